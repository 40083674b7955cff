"""Every access leaves one audit record through the real server, refusals included:
who asked (or "unauthenticated" and the peer), what, and the status and reason of the
answer. No record ever holds a secret."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from pathlib import Path

import grpc
import pytest
from core.conftest import PRINCIPALS, aws_env
from core.secrets_fixtures import sample
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bucketvault import errors
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.v1 import audit_pb2


def _records(server: RunningServer, **kw: str) -> list[audit_pb2.AuditRecord]:
    return list(server.client(server.tokens["auditor"]).query_audit(**kw))


def _only(server: RunningServer, request_id: str) -> audit_pb2.AuditRecord:
    found = [r for r in _records(server) if r.request_id == request_id]
    assert len(found) == 1, found
    return found[0]


def _mount(server: RunningServer) -> tuple[str, str]:
    c = server.client()
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    mount = c.create_mount(
        "acme", name="m", bucket="b", prefix="img/", credential_id=cred.credential_id
    )
    return cred.credential_id, mount.mount_id


def _refused(call: object, error: type[errors.BucketVaultError]) -> str:
    """Run call, which must fail with error; the request id the server gave the call."""
    with pytest.raises(error) as exc:
        call()  # type: ignore[operator]
    return exc.value.metadata["request_id"]


def test_every_refusal_is_recorded_with_its_status_and_reason(server: RunningServer) -> None:
    cred_id, mount_id = _mount(server)
    admin = server.client()
    viewer = server.client(server.tokens["viewer"])
    stranger = server.client("bv_" + secrets.token_urlsafe(32))

    outside = _refused(
        lambda: viewer.sign_url("acme", mount_id, "other/cat.jpg"), errors.PermissionDenied
    )
    too_long = _refused(
        lambda: viewer.sign_url("acme", mount_id, "img/cat.jpg", ttl_seconds=10**6),
        errors.InvalidArgument,
    )
    unknown = _refused(lambda: stranger.sign_url("acme", mount_id, "img/a"), errors.Unauthenticated)
    cross = _refused(
        lambda: viewer.sign_url("globex", mount_id, "img/cat.jpg"), errors.PermissionDenied
    )
    admin.revoke_credential("acme", cred_id, "rotated")
    revoked = _refused(
        lambda: viewer.sign_url("acme", mount_id, "img/cat.jpg", method="HEAD"),
        errors.FailedPrecondition,
    )
    expected = {
        outside: ("viewer", "acme", "denied", "PERMISSION_DENIED", "KEY_OUTSIDE_MOUNT"),
        too_long: ("viewer", "acme", "error", "INVALID_ARGUMENT", "TTL_TOO_LONG"),
        unknown: ("unauthenticated", "acme", "denied", "UNAUTHENTICATED", "TOKEN_UNKNOWN"),
        cross: ("viewer", "globex", "denied", "PERMISSION_DENIED", "PERMISSION_DENIED"),
        revoked: ("viewer", "acme", "error", "FAILED_PRECONDITION", "CREDENTIAL_REVOKED"),
    }
    for request_id, want in expected.items():
        r = _only(server, request_id)
        assert (r.principal, r.tenant, r.outcome, r.status, r.reason) == want
        assert r.action == "signer.sign" and r.mount_id == mount_id
        assert r.peer.startswith(("ipv4:", "ipv6:"))
    r = _only(server, too_long)
    assert r.requested_ttl_seconds == 10**6 and list(r.keys) == ["img/cat.jpg"]
    assert _only(server, revoked).credential_id == cred_id
    assert _only(server, revoked).method == "HEAD"
    # Denials are one query away; a success is among none of them.
    denied = {r.request_id for r in _records(server, outcome="denied")}
    assert denied == {outside, unknown, cross}
    assert admin.verify_audit().ok


def test_refused_writes_leave_a_failure_record_and_no_success(server: RunningServer) -> None:
    cred_id, mount_id = _mount(server)
    admin = server.client()
    taken = _refused(
        lambda: admin.create_mount("acme", name="m", bucket="b", credential_id=cred_id),
        errors.AlreadyExists,
    )
    r = _only(server, taken)
    assert (r.action, r.outcome, r.status, r.reason) == (
        "vault.create_mount",
        "error",
        "ALREADY_EXISTS",
        "MOUNT_NAME_TAKEN",
    )
    # The refused mount was never stored: the tenant still has exactly one.
    assert [m.mount_id for m in admin.list_mounts("acme")] == [mount_id]
    stale = _refused(lambda: admin.rebind_mount("acme", mount_id, cred_id, 7), errors.Aborted)
    assert _only(server, stale).reason == "VERSION_MISMATCH"
    ops = server.client(server.tokens["globex-ops"])
    denied = _refused(
        lambda: ops.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC")),
        errors.PermissionDenied,
    )
    r = _only(server, denied)
    assert (r.principal, r.action, r.tenant, r.outcome) == (
        "globex-ops",
        "vault.register",
        "acme",
        "denied",
    )
    creates = _records(server, action="vault.create_mount")
    assert [(x.outcome, x.mount_id == mount_id) for x in creates] == [
        ("ok", True),
        ("error", False),
    ]


def test_calls_without_a_use_case_record_and_health_is_not_recorded(
    server: RunningServer,
) -> None:
    before = len(_records(server))
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest()).status == 1
    # Only the query itself was recorded (a query's record is committed before it reads).
    after = _records(server)
    assert len(after) == before + 1 and after[-1].action == "audit.query"
    # GetRegistrationKey's use case records nothing: the interceptor's end of call does.
    server.client().registration_key()
    assert _records(server)[-2].action == "vault.registration_key"


def test_a_signed_batch_lists_its_keys_and_no_record_holds_a_secret(
    tmp_path: Path, moto_url: str
) -> None:
    canary = "CANARY" + secrets.token_hex(8)
    with start_server(tmp_path, env=aws_env(moto_url), principals=PRINCIPALS) as srv:
        c = srv.client()
        cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC", canary))
        mount = c.create_mount(
            "acme", name="m", bucket="b", prefix="img/", credential_id=cred.credential_id
        )
        keys = [f"img/{i}.jpg" for i in range(100)]
        urls = c.sign_urls("acme", mount.mount_id, keys, ttl_seconds=300)
        with pytest.raises(errors.PermissionDenied):
            c.sign_urls("acme", mount.mount_id, ["img/ok", "etc/passwd"])
        c.register_credential("acme", "S3_ACCESS_KEY", sample("S3_ACCESS_KEY", canary))
        signs = list(c.query_audit("acme", action="signer.sign"))
        records = list(c.query_audit())
        db = sqlite3.connect(srv.data_dir / "bucketvault.sqlite")
        try:
            stored_rows = repr(db.execute("SELECT * FROM audit").fetchall())
        finally:
            db.close()
        tokens = [srv.admin_token, *srv.tokens.values()]
    ok, refused = signs
    assert (ok.outcome, ok.status, ok.key_count, ok.method) == ("ok", "OK", 100, "GET")
    assert list(ok.keys) == keys[:64]
    assert ok.keys_sha256 == hashlib.sha256("\n".join(keys).encode()).hexdigest()
    assert ok.expires_at.ToDatetime() == urls[0].expires_at.ToDatetime()
    assert ok.requested_ttl_seconds == 300 and ok.credential_id == cred.credential_id
    assert list(refused.keys) == ["img/ok", "etc/passwd"] and refused.reason == "KEY_OUTSIDE_MOUNT"
    everything = "\n".join(str(r) for r in records) + stored_rows
    for secret in (canary, *tokens):
        assert secret not in everything


def test_every_rpc_of_the_contract_has_an_action_name() -> None:
    from bucketvault.grpc.auditing import action_of
    from bucketvault.v1 import audit_pb2, signer_pb2, vault_pb2

    methods = [
        f"/{s.full_name}/{m.name}"
        for module in (vault_pb2, signer_pb2, audit_pb2)
        for s in module.DESCRIPTOR.services_by_name.values()
        for m in s.methods
    ]
    assert len(methods) >= 18
    assert [m for m in methods if action_of(m).startswith("rpc.")] == []
