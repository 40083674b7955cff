"""The Entra token endpoint down or slow, through the real server (AZURE_SERVICE_PRINCIPAL).

Two HTTPS stand-ins on loopback: an Entra look-alike at BUCKETVAULT_AZURE_AUTHORITY_HOST
(tenant discovery and the client-credentials grant) that can answer 503, stall (read the
request, never answer) or drop the connection; and a blob endpoint that serves Get User
Delegation Key and List Blobs to any bearer token it has seen issued. Each Entra call is
bounded by BUCKETVAULT_AZURE_TIMEOUT_SECONDS and 1 + BUCKETVAULT_AZURE_RETRY_TOTAL tries.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import grpc
import pytest
from azure.azurite_support import CLIENT_ID, CLIENT_SECRET, SP_OBJECT_ID, TENANT_ID, make_jwt

from bucketvault import errors
from bucketvault.client import BucketVaultClient, RetryPolicy
from bucketvault.testing.loopback import FaultyServer, LoopbackServer, StandInHandler
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.testing.tls import TlsFiles, localhost_certificate

TENANT = "acme"
TIMEOUT = 1
RETRY_TOTAL = 1
LISTING = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<EnumerationResults ServiceEndpoint="https://127.0.0.1/devstoreaccount1" '
    b'ContainerName="photos"><Blobs><Blob><Name>a.jpg</Name><Properties>'
    b"<Last-Modified>Thu, 01 Jan 2026 00:00:00 GMT</Last-Modified><Etag>0x1</Etag>"
    b"<Content-Length>3</Content-Length><BlobType>BlockBlob</BlobType></Properties></Blob>"
    b"</Blobs><NextMarker /></EnumerationResults>"
)


class FaultyEntra(FaultyServer):
    """Discovery and token grant; mode "ok", "busy" (503), "busy_grant" (503 to the grant
    only), "stall" or "drop"."""

    def __init__(self, tls: TlsFiles) -> None:
        self.issued: list[str] = []
        entra = self

        class Handler(StandInHandler):
            def _fault(self) -> bool:
                mode = entra.arrived()
                if mode == "busy_grant":
                    # Discovery answers; the grant itself is refused for now.
                    mode = "busy" if self.command == "POST" else "ok"
                if entra.misbehave(self, mode):
                    return True
                if mode == "busy":
                    # MSAL then answers the grant itself for Retry-After (else 5 s).
                    body = b'{"error": "temporarily_unavailable"}'
                    self.reply(503, body, "application/json", {"Retry-After": "1"})
                    return True
                return False

            def do_GET(self) -> None:
                if self._fault():
                    return
                base = f"https://127.0.0.1:{self.server.server_address[1]}"
                tenant = self.path.strip("/").split("/")[0]
                self.reply_json(
                    200,
                    {
                        "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                        "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                        "issuer": f"{base}/{tenant}/v2.0",
                    },
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self._fault():
                    return
                if form.get("client_secret") != CLIENT_SECRET or entra.mode == "refuse":
                    self.reply_json(401, {"error": "invalid_client"})
                    return
                token = make_jwt(TENANT_ID)
                with entra._lock:
                    entra.issued.append(token)
                body = {"token_type": "Bearer", "expires_in": 3599, "access_token": token}
                self.reply_json(200, body)

        super().__init__(Handler, tls=tls)


class Blob(LoopbackServer):
    """Get User Delegation Key and List Blobs, for tokens the Entra stand-in issued."""

    def __init__(self, tls: TlsFiles, entra: FaultyEntra) -> None:
        self.lists = 0
        blob = self

        class Handler(StandInHandler):
            def _authorised(self) -> bool:
                known = {f"Bearer {t}" for t in entra.issued}
                if self.headers.get("Authorization", "") in known:
                    return True
                self.reply(403, b"", headers={"x-ms-error-code": "AuthenticationFailed"})
                return False

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not self._authorised():
                    return
                key = (
                    "<?xml version='1.0' encoding='utf-8'?><UserDelegationKey>"
                    f"<SignedOid>{SP_OBJECT_ID}</SignedOid><SignedTid>{TENANT_ID}</SignedTid>"
                    "<SignedStart>2026-01-01T00:00:00Z</SignedStart>"
                    "<SignedExpiry>2099-01-01T00:00:00Z</SignedExpiry>"
                    "<SignedService>b</SignedService><SignedVersion>2024-08-04</SignedVersion>"
                    "<Value>a2V5LWJ5dGVzLWZvci10aGUtZGVsZWdhdGlvbi1rZXk=</Value>"
                    "</UserDelegationKey>"
                )
                self.reply(200, key.encode(), "application/xml")

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                blob.lists += 1
                self.reply(200, LISTING, "application/xml")

        super().__init__(Handler, tls=tls)


@dataclass
class World:
    srv: RunningServer
    mount_id: str
    entra: FaultyEntra
    blob: Blob


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    tls = localhost_certificate(tmp_path / "tls")
    entra = FaultyEntra(tls)
    blob = Blob(tls, entra)
    env = {
        "BUCKETVAULT_AZURE_AUTHORITY_HOST": entra.url,
        "BUCKETVAULT_AZURE_CA_BUNDLE": str(tls.cert),
        "BUCKETVAULT_AZURE_TIMEOUT_SECONDS": str(TIMEOUT),
        "BUCKETVAULT_AZURE_RETRY_TOTAL": str(RETRY_TOTAL),
    }
    doc = {
        "account_url": f"{blob.url}/devstoreaccount1",
        "tenant_id": TENANT_ID,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    try:
        with start_server(tmp_path / "srv", env=env) as srv:
            c = srv.client()
            cred = c.register_credential(TENANT, "AZURE_SERVICE_PRINCIPAL", doc)
            mount = c.create_mount(
                TENANT, name="p", bucket="photos", credential_id=cred.credential_id
            )
            yield World(srv, str(mount.mount_id), entra, blob)
    finally:
        blob.close()
        entra.close()


def _once(srv: RunningServer) -> BucketVaultClient:
    return BucketVaultClient(srv.address, srv.admin_token, retry=RetryPolicy(max_attempts=1))


def _keys(w: World) -> list[str]:
    with _once(w.srv) as client:
        pages = client.list_prefix(TENANT, w.mount_id, timeout=15)
        return [e.key for p in pages for e in p.entries]


def _recovered(w: World) -> list[str]:
    """The listing once the endpoint answers again, waiting out MSAL's throttle (1 s)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return _keys(w)
        except errors.Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _list_error(w: World) -> errors.BucketVaultError:
    with _once(w.srv) as client, pytest.raises(errors.BucketVaultError) as info:
        list(client.list_prefix(TENANT, w.mount_id, timeout=15))
    return info.value


def _audited(w: World, reason: str) -> list[str]:
    return [r.status for r in w.srv.client().query_audit(TENANT) if r.reason == reason]


def test_the_stand_ins_list_when_healthy(world: World) -> None:
    assert _keys(world) == ["a.jpg"]
    assert world.blob.lists == 1


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("busy", "AZURE_TOKEN_UNAVAILABLE"),
        ("busy_grant", "AZURE_TOKEN_UNAVAILABLE"),
        ("stall", "AZURE_TOKEN_TIMEOUT"),
        ("drop", "AZURE_TOKEN_UNAVAILABLE"),
    ],
)
def test_a_failing_token_endpoint_is_unavailable_within_a_bounded_time(
    world: World, mode: str, reason: str
) -> None:
    world.entra.set(mode)
    started = time.monotonic()
    error = _list_error(world)
    elapsed = time.monotonic() - started
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, reason)
    assert world.entra.requests >= 1 and world.blob.lists == 0
    assert elapsed < (1 + RETRY_TOTAL) * TIMEOUT + 6, elapsed
    assert CLIENT_SECRET not in error.message
    assert "UNAVAILABLE" in _audited(world, reason)
    world.entra.set("ok")
    assert _recovered(world) == ["a.jpg"]


def test_a_secret_refused_after_registration_is_failed_precondition(world: World) -> None:
    world.entra.set("refuse")  # the secret was rotated or the app deleted
    error = _list_error(world)
    assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "AZURE_AUTH_FAILED")
    assert CLIENT_SECRET not in error.message
    assert "FAILED_PRECONDITION" in _audited(world, "AZURE_AUTH_FAILED")


def test_a_cached_token_keeps_serving_while_the_token_endpoint_stalls(world: World) -> None:
    assert _keys(world) == ["a.jpg"]  # the handle's credential now holds a token
    world.entra.set("stall")
    assert _keys(world) == ["a.jpg"]
    assert _keys(world) == ["a.jpg"]
    assert world.blob.lists == 3
    assert world.entra.requests == 0, "served from the credential's token cache"
    url = world.srv.client().sign_url(TENANT, world.mount_id, "a.jpg", ttl_seconds=60).url
    assert "sig=" in url and "skoid=" in url  # the cached delegation key signs
