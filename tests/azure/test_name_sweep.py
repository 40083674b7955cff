"""Hypothesis sweep of blob names: our URL equals the SDK's and Azurite serves it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import requests
from azure.azurite_support import (
    ACCOUNT,
    ACCOUNT_KEY,
    Azurite,
    make_credential,
    make_mount,
    options,
    provider,
    sdk_service,
    shared_key_secret,
    unique,
)
from azure.storage.blob import ContainerClient, generate_blob_sas
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bucketvault.clock import FrozenClock
from bucketvault.models import CredentialKind
from bucketvault.objectkeys import check_key

pytestmark = pytest.mark.azurite


def _storable(name: str) -> bool:
    # Names Azure stores as given: the key rules, plus no empty segments or trailing dot/slash.
    try:
        check_key(name, "")
    except Exception:
        return False
    return (
        "//" not in name
        and "\\" not in name
        and not name.startswith("/")
        and not name.endswith(("/", "."))
        and name.strip() == name
    )


names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), max_codepoint=0x1F9FF),
    min_size=1,
    max_size=40,
).filter(_storable)


@pytest.fixture(scope="module")
def container(azurite: Azurite) -> Iterator[ContainerClient]:
    client = sdk_service(azurite.account_url).create_container(unique())
    yield client
    client.delete_container()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(name=names)
def test_names_sign_like_the_sdk_and_azurite_serves_them(
    azurite: Azurite, container: ContainerClient, name: str
) -> None:
    blob = container.get_blob_client(name)
    body = name.encode("utf-8")
    blob.upload_blob(body, overwrite=True)
    now = dt.datetime.now(dt.UTC)
    handle = provider(clock=FrozenClock(now)).open(
        make_credential(CredentialKind("AZURE_SHARED_KEY")), shared_key_secret(azurite.account_url)
    )
    (url,) = handle.sign(make_mount(container.container_name), [name], options(ttl=300))
    sdk_token = generate_blob_sas(
        ACCOUNT,
        container.container_name,
        name,
        account_key=ACCOUNT_KEY,
        permission="r",
        expiry=url.expires_at,
    )
    assert url.url == f"{blob.url}?{sdk_token}"
    response = requests.get(url.url, timeout=10)
    assert response.status_code == 200, name
    assert response.content == body
