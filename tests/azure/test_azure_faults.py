"""Azure Blob down, slow or throttling, through the real server and the real Azure provider.

A loopback blob endpoint answers List Blobs and, on demand, 503 ServerBusy, a stall (the
request read, never answered) or a dropped connection. The mount's credential is a
customer container SAS, so SignURL needs no call to Azure and keeps working meanwhile.
azure-core's retries are bounded by BUCKETVAULT_AZURE_RETRY_TOTAL, each try by
BUCKETVAULT_AZURE_TIMEOUT_SECONDS; the stand-in counts the tries.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from bucketvault import errors
from bucketvault.client import BucketVaultClient, RetryPolicy
from bucketvault.grpc.status import error_info, retry_delay
from bucketvault.testing.loopback import FaultyServer, StandInHandler
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.v1 import signer_pb2, signer_pb2_grpc

TENANT = "acme"
TIMEOUT = 1
RETRY_TOTAL = 1
SIG = "c2VjcmV0LXNpZ25hdHVyZS1mYXVsdHM="

LISTING = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<EnumerationResults ServiceEndpoint="http://127.0.0.1/devstoreaccount1" '
    b'ContainerName="photos"><Blobs><Blob><Name>a.jpg</Name><Properties>'
    b"<Last-Modified>Thu, 01 Jan 2026 00:00:00 GMT</Last-Modified><Etag>0x1</Etag>"
    b"<Content-Length>3</Content-Length><BlobType>BlockBlob</BlobType></Properties></Blob>"
    b"</Blobs><NextMarker /></EnumerationResults>"
)
SERVER_BUSY = (
    b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
    b"<Message>The server is busy.</Message></Error>"
)


class FaultyBlob(FaultyServer):
    """List Blobs for any container; mode "ok", "busy", "stall" or "drop"."""

    def __init__(self) -> None:
        blob = self

        class Handler(StandInHandler):
            def _answer(self) -> None:
                mode = blob.arrived()
                if blob.misbehave(self, mode):
                    return
                headers = {"x-ms-error-code": "ServerBusy", "Retry-After": "3"}
                if mode == "busy":
                    self.reply(503, SERVER_BUSY, "application/xml", headers)
                    return
                self.reply(200, LISTING, "application/xml")

            do_GET = do_HEAD = _answer

        super().__init__(Handler)


@pytest.fixture
def blob() -> Iterator[FaultyBlob]:
    server = FaultyBlob()
    yield server
    server.close()


@pytest.fixture
def world(blob: FaultyBlob, tmp_path: Path) -> Iterator[tuple[RunningServer, str]]:
    env = {
        "BUCKETVAULT_AZURE_TIMEOUT_SECONDS": str(TIMEOUT),
        "BUCKETVAULT_AZURE_RETRY_TOTAL": str(RETRY_TOTAL),
    }
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    token = f"sv=2024-08-04&sr=c&sp=rl&se={expiry}&sig={SIG.replace('=', '%3D')}"
    with start_server(tmp_path, env=env) as srv:
        c = srv.client()
        doc = {"account_url": f"{blob.url}/devstoreaccount1", "sas_token": token}
        cred = c.register_credential(TENANT, "AZURE_SAS", doc, display_name="sas")
        mount = c.create_mount(
            TENANT,
            name="p",
            bucket="photos",
            credential_id=cred.credential_id,
            allow_credential_lifetime=True,
        )
        yield srv, str(mount.mount_id)


def _list_error(srv: RunningServer, mount_id: str) -> errors.BucketVaultError:
    once = BucketVaultClient(srv.address, srv.admin_token, retry=RetryPolicy(max_attempts=1))
    with once, pytest.raises(errors.BucketVaultError) as info:
        list(once.list_prefix(TENANT, mount_id, timeout=15))
    return info.value


def _raw_list(srv: RunningServer, mount_id: str) -> grpc.Call:
    with grpc.insecure_channel(srv.address) as channel:
        stub = signer_pb2_grpc.SignerServiceStub(channel)
        request = signer_pb2.ListPrefixRequest(tenant=TENANT, mount_id=mount_id)
        metadata = (("authorization", f"Bearer {srv.admin_token}"),)
        with pytest.raises(grpc.RpcError) as info:
            list(stub.ListPrefix(request, metadata=metadata, timeout=15))
    assert isinstance(info.value, grpc.Call)
    return info.value


def _signs(srv: RunningServer, mount_id: str) -> None:
    url = srv.client().sign_url(TENANT, mount_id, "a.jpg", ttl_seconds=60).url
    assert "sig=" in url


def _audited(srv: RunningServer, reason: str) -> list[str]:
    return [r.status for r in srv.client().query_audit(TENANT) if r.reason == reason]


def test_the_stand_in_lists_when_healthy(world: tuple[RunningServer, str]) -> None:
    srv, mount_id = world
    keys = [e.key for p in srv.client().list_prefix(TENANT, mount_id) for e in p.entries]
    assert keys == ["a.jpg"]


def test_server_busy_is_resource_exhausted_with_retry_info(
    world: tuple[RunningServer, str], blob: FaultyBlob
) -> None:
    srv, mount_id = world
    blob.set("busy")
    error = _list_error(srv, mount_id)
    assert (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "AZURE_THROTTLED")
    assert blob.requests == 1 + RETRY_TOTAL, "azure-core retried, boundedly"
    call = _raw_list(srv, mount_id)
    assert error_info(call)[0] == "AZURE_THROTTLED"
    assert retry_delay(call) == pytest.approx(3.0)
    assert SIG not in (call.details() or "")
    _signs(srv, mount_id)
    assert "RESOURCE_EXHAUSTED" in _audited(srv, "AZURE_THROTTLED")


def test_a_stalled_account_fails_unavailable_within_the_bounded_timeout(
    world: tuple[RunningServer, str], blob: FaultyBlob
) -> None:
    srv, mount_id = world
    blob.set("stall")
    started = time.monotonic()
    error = _list_error(srv, mount_id)
    elapsed = time.monotonic() - started
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "AZURE_TIMEOUT")
    assert elapsed < (1 + RETRY_TOTAL) * TIMEOUT + 6, elapsed
    _signs(srv, mount_id)
    assert "UNAVAILABLE" in _audited(srv, "AZURE_TIMEOUT")


def test_a_dropped_connection_is_unavailable(
    world: tuple[RunningServer, str], blob: FaultyBlob
) -> None:
    srv, mount_id = world
    blob.set("drop")
    error = _list_error(srv, mount_id)
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "AZURE_UNREACHABLE")
    _signs(srv, mount_id)
    assert "UNAVAILABLE" in _audited(srv, "AZURE_UNREACHABLE")


def test_a_service_principal_over_http_is_invalid_argument(tmp_path: Path) -> None:
    doc = {
        "account_url": "http://127.0.0.1:10000/devstoreaccount1",
        "tenant_id": "11111111-2222-3333-4444-555555555555",
        "client_id": "66666666-7777-8888-9999-000000000000",
        "client_secret": "sp-secret-value",
    }
    with start_server(tmp_path) as srv:
        with pytest.raises(errors.InvalidArgument) as info:
            srv.client().register_credential(TENANT, "AZURE_SERVICE_PRINCIPAL", doc)
        assert info.value.reason == "BEARER_NEEDS_HTTPS"
        assert info.value.field == "secret.account_url"
        assert "sp-secret-value" not in info.value.message
