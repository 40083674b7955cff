"""Authentication and authorization through the real server."""

from __future__ import annotations

import grpc
import pytest
from core.secrets_fixtures import sample
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bucketvault import errors
from bucketvault.client import BucketVaultClient
from bucketvault.testing.server import RunningServer
from bucketvault.v1 import vault_pb2, vault_pb2_grpc


def test_missing_and_unknown_tokens_are_unauthenticated(server: RunningServer) -> None:
    with grpc.insecure_channel(server.address) as channel:
        vault = vault_pb2_grpc.VaultServiceStub(channel)
        with pytest.raises(grpc.RpcError) as exc:
            vault.GetRegistrationKey(vault_pb2.GetRegistrationKeyRequest())
        assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
    for token in ("not-a-real-token-at-all-xyz", "short"):
        c = BucketVaultClient(server.address, token)
        with pytest.raises(errors.Unauthenticated) as err:
            c.registration_key()
        assert err.value.reason in ("TOKEN_UNKNOWN", "TOKEN_MALFORMED")
        c.close()


def test_roles_are_enforced(server: RunningServer) -> None:
    admin = server.client()
    cred = admin.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    viewer = server.client(server.tokens["viewer"])
    with pytest.raises(errors.PermissionDenied):
        viewer.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    with pytest.raises(errors.PermissionDenied):
        viewer.revoke_credential("acme", cred.credential_id)
    with pytest.raises(errors.PermissionDenied):
        viewer.verify_audit()
    auditor = server.client(server.tokens["auditor"])
    assert auditor.verify_audit().ok
    with pytest.raises(errors.PermissionDenied):
        auditor.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    assert auditor.get_credential("acme", cred.credential_id).credential_id == cred.credential_id


def test_other_tenants_get_no_hint_of_existence(server: RunningServer) -> None:
    admin = server.client()
    cred = admin.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    mount = admin.create_mount("acme", name="m", bucket="b", credential_id=cred.credential_id)
    outsider = server.client(server.tokens["globex-ops"])
    for call, real, fake in (
        (outsider.get_mount, mount.mount_id, "mnt_doesnotexist"),
        (outsider.get_credential, cred.credential_id, "cred_doesnotexist"),
    ):
        answers = set()
        for resource_id in (real, fake):
            with pytest.raises(errors.PermissionDenied) as exc:
                call("acme", resource_id)
            answers.add((exc.value.reason, exc.value.message))
        assert len(answers) == 1
    # Within its own tenant, another tenant's ids are simply not found.
    with pytest.raises(errors.NotFound):
        outsider.get_credential("globex", cred.credential_id)


def test_health_needs_no_token(server: RunningServer) -> None:
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in (
            "",
            "bucketvault.v1.SignerService",
            "bucketvault.v1.VaultService",
            "bucketvault.v1.AuditService",
        ):
            response = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_errors_carry_request_id_and_error_info(server: RunningServer) -> None:
    c = server.client()
    with pytest.raises(errors.NotFound) as exc:
        c.get_credential("acme", "cred_nope")
    assert exc.value.reason == "CREDENTIAL_NOT_FOUND"
    assert exc.value.metadata.get("request_id")
