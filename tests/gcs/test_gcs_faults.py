"""GCS and its token endpoint down, slow or throttling, through the real server.

One loopback stand-in plays both peers of a GCS_SERVICE_ACCOUNT mount: the key's
token_uri (POST /token, JWT-bearer grant) and the JSON API listing (the mount's endpoint).
Each side answers on demand 429 / 503, a stall (the request read, never answered) or a
dropped connection. SignURL signs locally with the RSA key, so it keeps working meanwhile.
Listing GETs are retried BUCKETVAULT_GCS_MAX_ATTEMPTS times in all; the stand-in counts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from gcs.gcsutil import HMAC_ACCESS_ID, HMAC_SECRET, sa_info

from bucketvault import errors
from bucketvault.client import BucketVaultClient, RetryPolicy
from bucketvault.clock import FrozenClock
from bucketvault.errors import InvalidArgument, ResourceExhausted
from bucketvault.grpc.status import error_info, retry_delay
from bucketvault.providers.gcs.errors import ListTarget, http_error
from bucketvault.providers.gcs.settings import GcsSettings
from bucketvault.testing.loopback import FaultyServer, StandInHandler
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.v1 import signer_pb2, signer_pb2_grpc

TENANT = "acme"
TIMEOUT = 1.0
ATTEMPTS = 2
TARGET = ListTarget("http://127.0.0.1:1", "photos", "sa@p.iam.gserviceaccount.com")
LISTING = {"items": [{"name": "a.jpg", "size": "3", "etag": "e"}]}


class FaultyGoogle(FaultyServer):
    """Token endpoint and JSON API; token_mode / list_mode "ok", "busy" (503),
    "throttle" (429, listing only), "stall" or "drop"."""

    def __init__(self) -> None:
        self.token_mode = "ok"
        self.list_mode = "ok"
        self.grants = 0
        self.lists = 0
        self.issued: list[str] = []
        self._lock = threading.Lock()
        google = self

        class Handler(StandInHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with google._lock:
                    google.grants += 1
                    token = f"ya29.fault-{google.grants}"
                mode = google.token_mode
                if google.misbehave(self, mode):
                    return
                if mode == "busy":
                    self.reply_json(503, {"error": "temporarily_unavailable"})
                    return
                with google._lock:
                    google.issued.append(token)
                self.reply_json(200, {"access_token": token, "expires_in": 3600})

            def do_GET(self) -> None:
                with google._lock:
                    google.lists += 1
                    known = [f"Bearer {t}" for t in google.issued]
                mode = google.list_mode
                if google.misbehave(self, mode):
                    return
                if mode == "busy":
                    self.reply_json(503, {"error": {"code": 503, "message": "backendError"}})
                elif mode == "throttle":
                    self.reply_json(429, {"error": {"code": 429, "message": "rateLimitExceeded"}})
                elif self.headers.get("Authorization", "") not in known:
                    self.reply_json(401, {"error": {"code": 401, "message": "bad token"}})
                else:
                    self.reply_json(200, LISTING)

        super().__init__(Handler)
        self.token_url = f"{self.url}/token"

    def set(self, *, token: str | None = None, listing: str | None = None) -> None:
        with self._lock:
            self.token_mode = token or self.token_mode
            self.list_mode = listing or self.list_mode
            self.grants = 0
            self.lists = 0


@dataclass
class World:
    srv: RunningServer
    mount_id: str
    clock: FrozenClock
    google: FaultyGoogle


@pytest.fixture
def world(rsa_key: RSAPrivateKey, tmp_path: Path) -> Iterator[World]:
    google = FaultyGoogle()
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    env = {
        "BUCKETVAULT_GCS_TOKEN_URI_ALLOWLIST": google.token_url,
        "BUCKETVAULT_GCS_TIMEOUT_SECONDS": str(TIMEOUT),
        "BUCKETVAULT_GCS_CONNECT_TIMEOUT_SECONDS": str(TIMEOUT),
        "BUCKETVAULT_GCS_MAX_ATTEMPTS": str(ATTEMPTS),
        "BUCKETVAULT_GCS_TOKEN_TIMEOUT_SECONDS": str(TIMEOUT),
    }
    try:
        with start_server(tmp_path, env=env, clock=clock) as srv:
            c = srv.client()
            cred = c.register_credential(
                TENANT, "GCS_SERVICE_ACCOUNT", sa_info(rsa_key, google.token_url)
            )
            mount = c.create_mount(
                TENANT,
                name="p",
                bucket="photos",
                credential_id=cred.credential_id,
                endpoint=google.url,
            )
            yield World(srv, str(mount.mount_id), clock, google)
    finally:
        google.close()


def _once(srv: RunningServer) -> BucketVaultClient:
    """A client that does not retry: what the server answered is what the test sees."""
    return BucketVaultClient(srv.address, srv.admin_token, retry=RetryPolicy(max_attempts=1))


def _keys(w: World) -> list[str]:
    with _once(w.srv) as client:
        pages = client.list_prefix(TENANT, w.mount_id, timeout=15)
        return [e.key for p in pages for e in p.entries]


def _list_error(w: World) -> errors.BucketVaultError:
    with _once(w.srv) as client, pytest.raises(errors.BucketVaultError) as info:
        list(client.list_prefix(TENANT, w.mount_id, timeout=15))
    return info.value


def _raw_list(w: World) -> grpc.Call:
    with grpc.insecure_channel(w.srv.address) as channel:
        stub = signer_pb2_grpc.SignerServiceStub(channel)
        request = signer_pb2.ListPrefixRequest(tenant=TENANT, mount_id=w.mount_id)
        metadata = (("authorization", f"Bearer {w.srv.admin_token}"),)
        with pytest.raises(grpc.RpcError) as info:
            list(stub.ListPrefix(request, metadata=metadata, timeout=15))
    assert isinstance(info.value, grpc.Call)
    return info.value


def _signs(w: World) -> None:
    url = w.srv.client().sign_url(TENANT, w.mount_id, "a.jpg", ttl_seconds=60).url
    assert "X-Goog-Signature=" in url


def _audited(w: World, reason: str) -> list[str]:
    return [r.status for r in w.srv.client().query_audit(TENANT) if r.reason == reason]


def test_429_is_resource_exhausted_with_a_retry_delay() -> None:
    error = http_error(429, TARGET, what="storage.objects.list")
    assert isinstance(error, ResourceExhausted)
    assert (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "GCS_THROTTLED")
    assert error.retry_after is not None and error.retry_after > 0


def test_503_stays_unavailable() -> None:
    error = http_error(503, TARGET, what="storage.objects.list")
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "GCS_UNAVAILABLE")


def test_settings_are_bounded() -> None:
    settings = GcsSettings.from_env({"BUCKETVAULT_GCS_TIMEOUT_SECONDS": "2.5"})
    assert settings.timeout == (5.0, 2.5)
    assert settings.retry().total == settings.max_attempts - 1
    for name, bad in (
        ("BUCKETVAULT_GCS_TIMEOUT_SECONDS", "0"),
        ("BUCKETVAULT_GCS_CONNECT_TIMEOUT_SECONDS", "301"),
        ("BUCKETVAULT_GCS_TOKEN_TIMEOUT_SECONDS", "soon"),
        ("BUCKETVAULT_GCS_MAX_ATTEMPTS", "0"),
    ):
        with pytest.raises(InvalidArgument) as info:
            GcsSettings.from_env({name: bad})
        assert info.value.reason == "INVALID_CONFIG"


def test_the_stand_in_lists_when_healthy(world: World) -> None:
    assert _keys(world) == ["a.jpg"]
    assert (world.google.grants, world.google.lists) == (1, 1)


def test_a_throttled_listing_is_resource_exhausted_with_retry_info(world: World) -> None:
    world.google.set(listing="throttle")
    error = _list_error(world)
    assert (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "GCS_THROTTLED")
    assert world.google.lists == ATTEMPTS, "retried, boundedly"
    call = _raw_list(world)
    assert error_info(call)[0] == "GCS_THROTTLED"
    assert retry_delay(call) == pytest.approx(1.0)
    _signs(world)
    assert "RESOURCE_EXHAUSTED" in _audited(world, "GCS_THROTTLED")


def test_a_503_listing_is_unavailable_after_the_bounded_retries(world: World) -> None:
    world.google.set(listing="busy")
    error = _list_error(world)
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "GCS_UNAVAILABLE")
    assert world.google.lists == ATTEMPTS
    _signs(world)
    assert "UNAVAILABLE" in _audited(world, "GCS_UNAVAILABLE")
    world.google.set(listing="ok")
    assert _keys(world) == ["a.jpg"]


def test_a_stalled_listing_fails_unavailable_within_the_bounded_timeout(world: World) -> None:
    world.google.set(listing="stall")
    started = time.monotonic()
    error = _list_error(world)
    elapsed = time.monotonic() - started
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "GCS_TIMEOUT")
    assert world.google.lists == ATTEMPTS
    assert elapsed < ATTEMPTS * TIMEOUT + 6, elapsed
    _signs(world)
    assert "UNAVAILABLE" in _audited(world, "GCS_TIMEOUT")
    # A caller's own deadline shorter than GCS's timeout is DEADLINE_EXCEEDED.
    with _once(world.srv) as client, pytest.raises(errors.DeadlineExceeded):
        list(client.list_prefix(TENANT, world.mount_id, timeout=TIMEOUT / 4))


def test_a_dropped_listing_connection_is_unavailable(world: World) -> None:
    world.google.set(listing="drop")
    error = _list_error(world)
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "ENDPOINT_UNREACHABLE")
    assert world.google.lists == ATTEMPTS
    _signs(world)
    assert "UNAVAILABLE" in _audited(world, "ENDPOINT_UNREACHABLE")


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("busy", "GCS_TOKEN_UNAVAILABLE"),
        ("stall", "GCS_TOKEN_TIMEOUT"),
        ("drop", "GCS_TOKEN_UNAVAILABLE"),
    ],
)
def test_a_failing_token_endpoint_is_unavailable_with_a_clear_reason(
    world: World, mode: str, reason: str
) -> None:
    world.google.set(token=mode)
    started = time.monotonic()
    error = _list_error(world)
    elapsed = time.monotonic() - started
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, reason)
    assert world.google.grants >= 1 and world.google.lists == 0
    # google-auth retries a 503 twice (about 1 s, then 2 s, jittered); a stall costs one timeout.
    assert elapsed < 3 * TIMEOUT + 8, elapsed
    assert "the token endpoint" in error.message and "ya29" not in error.message
    _signs(world)
    assert "UNAVAILABLE" in _audited(world, reason)


def test_a_cached_token_keeps_serving_while_the_token_endpoint_stalls(world: World) -> None:
    assert _keys(world) == ["a.jpg"]  # mints and caches a one-hour token
    world.google.set(token="stall")
    # 3 minutes left: in the advisory window, so a background refresh starts (and stalls).
    world.clock.advance(timedelta(minutes=57))
    assert _keys(world) == ["a.jpg"]
    deadline = time.monotonic() + 10
    while world.google.grants == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert world.google.grants >= 1, "the refresh was tried against the stalled endpoint"
    assert _keys(world) == ["a.jpg"]
    _signs(world)
    # With no usable token left (under a minute), the outage shows.
    world.clock.advance(timedelta(minutes=2, seconds=30))
    error = _list_error(world)
    assert error.code == grpc.StatusCode.UNAVAILABLE
    assert error.reason in {"GCS_TOKEN_TIMEOUT", "GCS_TOKEN_UNAVAILABLE"}


@pytest.mark.parametrize(
    ("mode", "reason"), [("stall", "GCS_TIMEOUT"), ("drop", "ENDPOINT_UNREACHABLE")]
)
def test_hmac_interop_listing_is_bounded_too(world: World, mode: str, reason: str) -> None:
    c = world.srv.client()
    cred = c.register_credential(
        TENANT, "GCS_HMAC", {"access_id": HMAC_ACCESS_ID, "secret": HMAC_SECRET}
    )
    mount = c.create_mount(
        TENANT,
        name="h",
        bucket="photos",
        credential_id=cred.credential_id,
        endpoint=world.google.url,
    )
    world.google.set(listing=mode)
    started = time.monotonic()
    with _once(world.srv) as client, pytest.raises(errors.BucketVaultError) as info:
        list(client.list_prefix(TENANT, str(mount.mount_id), timeout=15))
    elapsed = time.monotonic() - started
    assert (info.value.code, info.value.reason) == (grpc.StatusCode.UNAVAILABLE, reason)
    assert world.google.lists == ATTEMPTS, "botocore's total_max_attempts counts the first"
    assert elapsed < ATTEMPTS * TIMEOUT + 6, elapsed
    assert HMAC_SECRET not in info.value.message
    url = c.sign_url(TENANT, str(mount.mount_id), "a.jpg", ttl_seconds=60).url
    assert "GOOG4-HMAC-SHA256" in url
