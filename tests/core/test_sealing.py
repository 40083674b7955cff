"""Sealed registration through the real server: round trip, binding, wrong key, tampering."""

from __future__ import annotations

import json

import pytest
from core.secrets_fixtures import sample

from bucketvault import errors
from bucketvault.crypto import hpke
from bucketvault.testing.server import RunningServer
from bucketvault.v1 import vault_pb2


@pytest.mark.parametrize(
    "suite",
    [
        vault_pb2.HPKE_SUITE_X25519_SHA256_AES256GCM,
        vault_pb2.HPKE_SUITE_MLKEM768_X25519_SHA256_AES256GCM,
    ],
)
def test_round_trip_for_each_suite(server: RunningServer, suite: int) -> None:
    c = server.client()
    key = c.registration_key(suite)
    assert key.suite == suite
    assert key.info_template == "bucketvault/v1/register|{tenant}|{KIND}"
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"), suite=suite)
    assert cred.state == vault_pb2.CREDENTIAL_STATE_ACTIVE
    assert cred.metadata["access_id"] == "GOOG1EXAMPLEHMAC"
    assert cred.fingerprint.startswith("hmac-sha256:")


def test_public_keys_have_the_suite_sizes(server: RunningServer) -> None:
    c = server.client()
    assert len(c.registration_key(vault_pb2.HPKE_SUITE_X25519_SHA256_AES256GCM).public_key) == 32
    assert (
        len(c.registration_key(vault_pb2.HPKE_SUITE_MLKEM768_X25519_SHA256_AES256GCM).public_key)
        == 1216
    )


def test_blob_sealed_for_another_tenant_is_refused(server: RunningServer) -> None:
    c = server.client()
    sealed = c.seal("globex", "GCS_HMAC", sample("GCS_HMAC"))
    with pytest.raises(errors.InvalidArgument) as exc:
        c.register_sealed("acme", "GCS_HMAC", sealed)
    assert exc.value.reason == "UNSEAL_FAILED"
    assert list(c.list_credentials("acme")) == []


def test_blob_sealed_for_another_kind_is_refused(server: RunningServer) -> None:
    c = server.client()
    sealed = c.seal(
        "acme", "GCS_HMAC", {"access_key_id": "AKIAEXAMPLE123456", "secret_access_key": "x"}
    )
    with pytest.raises(errors.InvalidArgument) as exc:
        c.register_sealed("acme", "S3_ACCESS_KEY", sealed)
    assert exc.value.reason == "UNSEAL_FAILED"


def test_unknown_key_id_is_a_failed_precondition(server: RunningServer) -> None:
    c = server.client()
    sealed = c.seal("acme", "GCS_HMAC", sample("GCS_HMAC"))
    sealed.key_id = "rk_doesnotexist"
    with pytest.raises(errors.FailedPrecondition) as exc:
        c.register_sealed("acme", "GCS_HMAC", sealed)
    assert exc.value.reason == "UNKNOWN_REGISTRATION_KEY"


def test_key_id_of_the_other_suite_does_not_open(server: RunningServer) -> None:
    c = server.client()
    sealed = c.seal("acme", "GCS_HMAC", sample("GCS_HMAC"))
    sealed.key_id = c.registration_key(vault_pb2.HPKE_SUITE_MLKEM768_X25519_SHA256_AES256GCM).key_id
    with pytest.raises(errors.InvalidArgument) as exc:
        c.register_sealed("acme", "GCS_HMAC", sealed)
    assert exc.value.reason == "UNSEAL_FAILED"


@pytest.mark.parametrize("position", [0, 16, 40, -1])
def test_tampered_blob_is_refused(server: RunningServer, position: int) -> None:
    c = server.client()
    sealed = c.seal("acme", "GCS_HMAC", sample("GCS_HMAC"))
    raw = bytearray(sealed.sealed)
    raw[position] ^= 0x01
    sealed.sealed = bytes(raw)
    with pytest.raises(errors.InvalidArgument) as exc:
        c.register_sealed("acme", "GCS_HMAC", sealed)
    assert exc.value.reason == "UNSEAL_FAILED"
    assert exc.value.field == "sealed_secret"


def test_truncated_and_empty_blobs_are_refused(server: RunningServer) -> None:
    c = server.client()
    sealed = c.seal("acme", "GCS_HMAC", sample("GCS_HMAC"))
    sealed.sealed = sealed.sealed[:20]
    with pytest.raises(errors.InvalidArgument):
        c.register_sealed("acme", "GCS_HMAC", sealed)
    sealed.sealed = b""
    with pytest.raises(errors.InvalidArgument) as exc:
        c.register_sealed("acme", "GCS_HMAC", sealed)
    assert exc.value.reason == "MISSING_FIELD"


def test_sealing_binds_info_exactly() -> None:
    private, public = hpke.generate(hpke.Suite.X25519_SHA256_AES256GCM)
    blob = hpke.seal(hpke.Suite.X25519_SHA256_AES256GCM, public, "acme", "AWS_ROLE", b"{}")
    assert (
        hpke.open_sealed(hpke.Suite.X25519_SHA256_AES256GCM, private, "acme", "AWS_ROLE", blob)
        == b"{}"
    )
    for tenant, kind in (("acme ", "AWS_ROLE"), ("acme", "S3_ACCESS_KEY"), ("acm", "AWS_ROLE")):
        with pytest.raises(errors.CryptoError):
            hpke.open_sealed(hpke.Suite.X25519_SHA256_AES256GCM, private, tenant, kind, blob)


def test_not_json_is_refused_without_echo(server: RunningServer) -> None:
    c = server.client()
    with pytest.raises(errors.InvalidArgument) as exc:
        c.register_credential("acme", "GCS_HMAC", b"{not json CANARY-NOTJSON")
    assert exc.value.reason == "SECRET_NOT_JSON"
    assert "CANARY-NOTJSON" not in exc.value.message
    with pytest.raises(errors.InvalidArgument):
        c.register_credential("acme", "GCS_HMAC", json.dumps(["a"]).encode())
