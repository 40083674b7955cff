"""Idempotency, revocation (crypto-shredding), mounts and rebinding, through the real server."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from core.secrets_fixtures import sample

from bucketvault import errors
from bucketvault.testing.server import RunningServer
from bucketvault.v1 import vault_pb2


def _db(server: RunningServer) -> Path:
    return server.data_dir / "bucketvault.sqlite"


def test_same_idempotency_key_returns_the_same_credential(server: RunningServer) -> None:
    c = server.client()
    first = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"), idempotency_key="op-1")
    again = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"), idempotency_key="op-1")
    assert again.credential_id == first.credential_id
    assert len(list(c.list_credentials("acme"))) == 1
    other_tenant = c.register_credential(
        "globex", "GCS_HMAC", sample("GCS_HMAC"), idempotency_key="op-1"
    )
    assert other_tenant.credential_id != first.credential_id


def test_reused_idempotency_key_with_another_secret_is_refused(server: RunningServer) -> None:
    c = server.client()
    c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC", "one"), idempotency_key="op-2")
    with pytest.raises(errors.AlreadyExists) as exc:
        c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC", "two"), idempotency_key="op-2")
    assert exc.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert len(list(c.list_credentials("acme"))) == 1


def test_concurrent_retries_make_one_credential(server: RunningServer) -> None:
    c = server.client()
    ids: list[str] = []
    lock = threading.Lock()

    def register() -> None:
        cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"), idempotency_key="op-3")
        with lock:
            ids.append(cred.credential_id)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert len(list(c.list_credentials("acme"))) == 1


def test_revoke_shreds_the_ciphertext(server: RunningServer) -> None:
    c = server.client()
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    with sqlite3.connect(_db(server)) as db:
        (envelope,) = db.execute(
            "SELECT envelope FROM credentials WHERE credential_id = ?", (cred.credential_id,)
        ).fetchone()
    assert envelope and len(envelope) > 40
    revoked = c.revoke_credential("acme", cred.credential_id, "rotated")
    assert revoked.state == vault_pb2.CREDENTIAL_STATE_REVOKED
    assert revoked.revoke_reason == "rotated" and revoked.revoked_by == "admin"
    # Any 24-byte window of the old envelope's random part (wrapped DEK, nonce,
    # ciphertext; the header is shared by every envelope) would betray a surviving copy.
    random_part = envelope[6 + envelope[5] + 2 :]
    files = [p for p in server.data_dir.iterdir() if p.name.startswith("bucketvault.sqlite")]
    assert files
    for path in files:
        data = path.read_bytes()
        for start in range(0, len(random_part) - 24, 24):
            assert random_part[start : start + 24] not in data, path.name
    shown = c.get_credential("acme", cred.credential_id)
    assert shown.state == vault_pb2.CREDENTIAL_STATE_REVOKED
    assert shown.metadata["access_id"] == "GOOG1EXAMPLEHMAC"
    again = c.revoke_credential("acme", cred.credential_id, "twice")
    assert again.revoke_reason == "rotated"


def test_mount_on_revoked_credential_fails_precondition(server: RunningServer) -> None:
    c = server.client()
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    mount = c.create_mount("acme", name="m", bucket="b", credential_id=cred.credential_id)
    c.revoke_credential("acme", cred.credential_id)
    with pytest.raises(errors.FailedPrecondition) as exc:
        c.sign_url("acme", mount.mount_id, "a.jpg")
    assert exc.value.reason == "CREDENTIAL_REVOKED"
    with pytest.raises(errors.FailedPrecondition) as exc:
        c.create_mount("acme", name="m2", bucket="b", credential_id=cred.credential_id)
    assert exc.value.reason == "CREDENTIAL_REVOKED"


def test_provider_missing_answers_unimplemented_not_a_url(server: RunningServer) -> None:
    c = server.client()
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    mount = c.create_mount("acme", name="m", bucket="b", credential_id=cred.credential_id)
    with pytest.raises(errors.Unimplemented) as exc:
        c.sign_url("acme", mount.mount_id, "a.jpg")
    assert exc.value.reason == "PROVIDER_UNAVAILABLE"
    with pytest.raises(errors.Unimplemented):
        list(c.list_prefix("acme", mount.mount_id))


def test_rebind_is_compare_and_swap(server: RunningServer) -> None:
    c = server.client()
    old = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC", "old"))
    new = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC", "new"))
    mount = c.create_mount("acme", name="m", bucket="b", credential_id=old.credential_id)
    assert mount.version == 1
    rebound = c.rebind_mount("acme", mount.mount_id, new.credential_id, expected_version=1)
    assert rebound.version == 2 and rebound.credential_id == new.credential_id
    with pytest.raises(errors.Aborted) as exc:
        c.rebind_mount("acme", mount.mount_id, old.credential_id, expected_version=1)
    assert exc.value.reason == "VERSION_MISMATCH"
    assert c.get_mount("acme", mount.mount_id).credential_id == new.credential_id


def test_concurrent_rebinds_one_wins(server: RunningServer) -> None:
    c = server.client()
    creds = [
        c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC", f"c{i}")) for i in range(6)
    ]
    mount = c.create_mount("acme", name="m", bucket="b", credential_id=creds[0].credential_id)
    outcomes: list[str] = []
    lock = threading.Lock()

    def rebind(cred_id: str) -> None:
        try:
            c.rebind_mount("acme", mount.mount_id, cred_id, expected_version=1)
            result = "ok"
        except errors.Aborted:
            result = "aborted"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=rebind, args=(cr.credential_id,)) for cr in creds[1:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["aborted"] * 4 + ["ok"]
    assert c.get_mount("acme", mount.mount_id).version == 2


def test_rebind_refuses_revoked_foreign_and_other_cloud_credentials(server: RunningServer) -> None:
    c = server.client()
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    mount = c.create_mount("acme", name="m", bucket="b", credential_id=cred.credential_id)
    foreign = c.register_credential("globex", "GCS_HMAC", sample("GCS_HMAC"))
    with pytest.raises(errors.NotFound):
        c.rebind_mount("acme", mount.mount_id, foreign.credential_id, expected_version=1)
    azure = c.register_credential("acme", "AZURE_SAS", sample("AZURE_SAS"))
    with pytest.raises(errors.FailedPrecondition) as exc:
        c.rebind_mount("acme", mount.mount_id, azure.credential_id, expected_version=1)
    assert exc.value.reason == "KIND_MISMATCH"
    dead = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC", "dead"))
    c.revoke_credential("acme", dead.credential_id)
    with pytest.raises(errors.FailedPrecondition) as exc:
        c.rebind_mount("acme", mount.mount_id, dead.credential_id, expected_version=1)
    assert exc.value.reason == "CREDENTIAL_REVOKED"
    assert c.get_mount("acme", mount.mount_id).version == 1


def test_mount_validation(server: RunningServer) -> None:
    c = server.client()
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    cid = cred.credential_id
    bad = [
        ({"name": "", "bucket": "b"}, "name"),
        ({"name": "m", "bucket": ""}, "bucket"),
        ({"name": "m", "bucket": "b", "prefix": "/abs"}, "prefix"),
        ({"name": "m", "bucket": "b", "prefix": "a/../b/"}, "prefix"),
        ({"name": "m", "bucket": "b", "endpoint": "ftp://x"}, "endpoint"),
        ({"name": "m", "bucket": "b", "max_ttl_seconds": 700000}, "policy.max_ttl_seconds"),
        ({"name": "m", "bucket": "b", "region": "US EAST"}, "region"),
    ]
    for fields, field in bad:
        with pytest.raises(errors.InvalidArgument) as exc:
            c.create_mount("acme", credential_id=cid, **fields)  # type: ignore[arg-type]
        assert exc.value.field == field
    assert list(c.list_mounts("acme")) == []
    c.create_mount("acme", name="m", bucket="b", credential_id=cid)
    with pytest.raises(errors.AlreadyExists):
        c.create_mount("acme", name="m", bucket="b", credential_id=cid)
    with pytest.raises(errors.NotFound):
        c.create_mount("acme", name="m3", bucket="b", credential_id="cred_nope")


def test_sign_request_rules_are_enforced_before_any_provider(server: RunningServer) -> None:
    c = server.client()
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    mount = c.create_mount(
        "acme",
        name="m",
        bucket="b",
        prefix="images/",
        credential_id=cred.credential_id,
        max_ttl_seconds=600,
    )
    cases = [
        (dict(key="other/a.jpg"), errors.PermissionDenied, "KEY_OUTSIDE_MOUNT"),
        (dict(key="images/../secret"), errors.InvalidArgument, "INVALID_KEY"),
        (dict(key="images/./a"), errors.InvalidArgument, "INVALID_KEY"),
        (dict(key="images/a\x00b"), errors.InvalidArgument, "INVALID_KEY"),
        (dict(key="images/" + "x" * 1100), errors.InvalidArgument, "INVALID_KEY"),
        (dict(key="images/a.jpg", ttl_seconds=601), errors.InvalidArgument, "TTL_TOO_LONG"),
        (dict(key="images/a.jpg", method="PUT"), errors.PermissionDenied, "METHOD_NOT_ALLOWED"),
    ]
    for kwargs, error, reason in cases:
        with pytest.raises(error) as exc:
            c.sign_url("acme", mount.mount_id, **kwargs)  # type: ignore[arg-type]
        assert exc.value.reason == reason, kwargs
    with pytest.raises(errors.InvalidArgument) as exc:
        c.sign_urls("acme", mount.mount_id, ["images/a"] * 1001)
    assert exc.value.reason == "BATCH_TOO_LARGE"
    with pytest.raises(errors.PermissionDenied) as exc:
        list(c.list_prefix("acme", mount.mount_id, prefix="other/"))
    assert exc.value.reason == "KEY_OUTSIDE_MOUNT"
    with pytest.raises(errors.NotFound):
        c.sign_url("acme", "mnt_nope", "images/a.jpg")


def test_list_pagination_of_credentials_and_mounts(server: RunningServer) -> None:
    c = server.client()
    made = {
        c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC", f"p{i}")).credential_id
        for i in range(7)
    }
    assert {x.credential_id for x in c.list_credentials("acme", page_size=3)} == made
    first = c.vault.ListCredentials(
        vault_pb2.ListCredentialsRequest(tenant="acme", page_size=3),
        metadata=(("authorization", f"Bearer {server.admin_token}"),),
    )
    assert len(first.credentials) == 3 and first.next_page_token


def test_a_stored_credential_the_policy_now_refuses_is_refused_at_use(tmp_path: Path) -> None:
    # Every kind's parser runs again when a stored credential is opened: a service-account
    # key whose token_uri was allow-listed at registration and is not any more is refused
    # before any token is asked for, and CheckMount says why instead of failing.
    from bucketvault.testing.fakes import offline_providers
    from bucketvault.testing.server import start_server

    token_uri = "https://tokens.example.com/token"
    doc = {**sample("GCS_SERVICE_ACCOUNT"), "token_uri": token_uri}
    data_dir = tmp_path / "bv"
    allowed = {"BUCKETVAULT_GCS_TOKEN_URI_ALLOWLIST": token_uri}
    with start_server(tmp_path, env=allowed, data_dir=data_dir, providers=offline_providers()) as s:
        c = s.client()
        cred = c.register_credential("acme", "GCS_SERVICE_ACCOUNT", doc)
        mount = c.create_mount(
            "acme", name="photos", bucket="photos", credential_id=cred.credential_id
        )
    with start_server(tmp_path, data_dir=data_dir, providers=offline_providers()) as s:
        c = s.client()
        check = c.check_mount("acme", mount.mount_id)
        assert check.state == vault_pb2.CheckMountResponse.STATE_MISCONFIGURED
        assert check.reason == "TOKEN_URI_NOT_ALLOWED"
        with pytest.raises(errors.FailedPrecondition) as exc:
            c.sign_url("acme", mount.mount_id, "cat.jpg")
        assert exc.value.reason == "TOKEN_URI_NOT_ALLOWED"
