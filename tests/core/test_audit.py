"""The audit log through the real server: every access recorded, chained, verifiable,
and fail-closed."""

from __future__ import annotations

import sqlite3

import pytest
from core.secrets_fixtures import sample

from bucketvault import errors
from bucketvault.testing.server import RunningServer


def _db(server: RunningServer) -> sqlite3.Connection:
    return sqlite3.connect(server.data_dir / "bucketvault.sqlite")


def test_accesses_are_recorded_and_the_chain_verifies(server: RunningServer) -> None:
    c = server.client()
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    c.create_mount("acme", name="m", bucket="b", credential_id=cred.credential_id)
    c.get_credential("acme", cred.credential_id)
    actions = [r.action for r in c.query_audit("acme")]
    assert actions[:3] == ["vault.register", "vault.create_mount", "vault.get_credential"]
    records = list(c.query_audit("acme"))
    assert all(r.principal == "admin" and r.tenant == "acme" for r in records[:3])
    assert records[1].prev_hash == records[0].hash
    result = c.verify_audit()
    assert result.ok and result.records_checked >= 3


def test_refused_signing_writes_a_failure_record_not_a_success(server: RunningServer) -> None:
    c = server.client()
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    mount = c.create_mount("acme", name="m", bucket="b", credential_id=cred.credential_id)
    with pytest.raises(errors.Unimplemented):
        c.sign_urls("acme", mount.mount_id, ["a", "b", "c"])
    # Refused before signing: one record, and it says the call failed and why.
    [record] = c.query_audit("acme", action="signer.sign")
    assert (record.outcome, record.status, record.reason) == (
        "error",
        "UNIMPLEMENTED",
        "PROVIDER_UNAVAILABLE",
    )
    assert list(record.keys) == ["a", "b", "c"] and record.key_count == 3
    assert record.credential_id == cred.credential_id and record.mount_id == mount.mount_id


@pytest.mark.parametrize("column", ["resource", "outcome", "principal"])
def test_tampering_is_detected(server: RunningServer, column: str) -> None:
    c = server.client()
    for i in range(3):
        c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC", f"t{i}"))
    with _db(server) as db:
        db.execute(f"UPDATE audit SET {column} = 'forged' WHERE seq = 2")
    result = c.verify_audit()
    assert not result.ok
    assert result.first_bad_record.endswith(":2")
    assert "hash" in result.detail


def test_deleted_record_is_detected(server: RunningServer) -> None:
    c = server.client()
    for i in range(3):
        c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC", f"d{i}"))
    with _db(server) as db:
        db.execute("DELETE FROM audit WHERE seq = 2")
    result = c.verify_audit()
    assert not result.ok and "missing" in result.detail


def test_no_audit_record_no_answer(server: RunningServer) -> None:
    c = server.client()
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    with _db(server) as db:
        db.execute(
            "CREATE TRIGGER audit_down BEFORE INSERT ON audit "
            "BEGIN SELECT RAISE(ABORT, 'audit store down'); END"
        )
    with pytest.raises(errors.Unavailable) as exc:
        c.get_credential("acme", cred.credential_id)
    assert exc.value.reason == "AUDIT_UNAVAILABLE"
    with _db(server) as db:
        db.execute("DROP TRIGGER audit_down")
    assert c.get_credential("acme", cred.credential_id).credential_id == cred.credential_id
    assert c.verify_audit().ok


def test_unfiltered_queries_need_an_all_tenant_auditor(server: RunningServer) -> None:
    viewer = server.client(server.tokens["globex-ops"])
    with pytest.raises(errors.PermissionDenied):
        list(viewer.query_audit())
    auditor = server.client(server.tokens["auditor"])
    server.client().register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    assert any(r.action == "vault.register" for r in auditor.query_audit())
