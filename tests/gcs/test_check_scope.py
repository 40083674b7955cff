"""CheckMount's enforced scope for the GCS key kinds: offline (an endpoint that refuses
connections still yields the scope, which depends on the kind, not on the answer)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from gcs.gcsutil import (
    HMAC_ACCESS_ID,
    HMAC_SECRET,
    free_port,
    make_mount,
    make_provider,
    open_handle,
    sa_info,
)

from bucketvault.clock import FrozenClock
from bucketvault.models import CredentialKind, MountState

pytestmark = pytest.mark.gcs

NOW = datetime(2026, 7, 4, 9, 30, 15, tzinfo=UTC)


def _dead_mount() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_a_service_account_key_is_confined_by_bucketvault_only(rsa_key: RSAPrivateKey) -> None:
    info = sa_info(rsa_key, token_uri=f"{_dead_mount()}/token")
    provider = make_provider(FrozenClock(NOW), frozenset({info["token_uri"]}))
    handle = open_handle(provider, CredentialKind("GCS_SERVICE_ACCOUNT"), info)
    result = handle.check(make_mount("b", endpoint=_dead_mount(), prefix="p/"))
    assert result.state is MountState.MISCONFIGURED
    assert result.scope == (
        f"none: a service-account key reaches whatever the customer granted "
        f"{info['client_email']}; only bucketvault's checks confine this mount"
    )


def test_an_hmac_key_is_confined_by_bucketvault_only() -> None:
    handle = open_handle(
        make_provider(FrozenClock(NOW)),
        CredentialKind("GCS_HMAC"),
        {"access_id": HMAC_ACCESS_ID, "secret": HMAC_SECRET},
    )
    result = handle.check(make_mount("b", endpoint=_dead_mount()))
    assert result.state is MountState.MISCONFIGURED
    assert result.scope.startswith("none: an HMAC key reaches whatever the customer granted")
    assert HMAC_SECRET not in result.scope + result.detail
