"""CheckMount's enforced scope for the Azure kinds that need no Entra stand-in, offline:
an account URL that refuses connections still yields the scope (it depends on the kind
and, for a customer SAS, on the token's own fields)."""

from __future__ import annotations

import datetime as dt

from azure.azurite_support import (
    ACCOUNT,
    ACCOUNT_KEY,
    make_credential,
    make_mount,
    provider,
    sas_secret,
    shared_key_secret,
)
from azure.storage.blob import ResourceTypes, generate_account_sas, generate_container_sas

from bucketvault.models import CredentialKind, MountState
from bucketvault.testing.ports import free_port

LATER = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)


def dead_account() -> str:
    return f"http://127.0.0.1:{free_port()}/{ACCOUNT}"


def test_shared_key_urls_carry_a_per_object_sas() -> None:
    kind = CredentialKind("AZURE_SHARED_KEY")
    handle = provider().open(make_credential(kind), shared_key_secret(dead_account()))
    result = handle.check(make_mount("photos"))
    assert (result.state, result.reason) == (MountState.MISCONFIGURED, "ACCOUNT_UNREACHABLE")
    assert result.scope == (
        "per-object SAS minted for each URL (sp=r or cw on one blob, expiring with the URL), "
        "a service SAS signed with the account key, under container photos"
    )


def test_a_customer_container_sas_is_enforced_as_issued() -> None:
    token = generate_container_sas(
        ACCOUNT, "photos", account_key=ACCOUNT_KEY, permission="rl", expiry=LATER
    )
    kind = CredentialKind("AZURE_SAS")
    handle = provider().open(make_credential(kind), sas_secret(dead_account(), token))
    assert handle.check(make_mount("photos")).scope == (
        "the customer's SAS as issued: sp=rl, container scope (sr=c), "
        "until 2099-01-01T00:00:00+00:00"
    )


def test_a_customer_account_sas_says_it_spans_every_container() -> None:
    token = generate_account_sas(
        ACCOUNT, ACCOUNT_KEY, ResourceTypes(container=True, object=True), "rl", LATER
    )
    kind = CredentialKind("AZURE_SAS")
    handle = provider().open(make_credential(kind), sas_secret(dead_account(), token))
    scope = handle.check(make_mount("photos")).scope
    assert scope.startswith("the customer's SAS as issued: sp=rl, account scope (srt=co, ss=b)")
    assert "every container" in scope
