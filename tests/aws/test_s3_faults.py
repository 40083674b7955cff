"""S3 down, slow or throttling, through the real server and the real AWS provider.

A loopback S3 speaks ListObjectsV2 and, on demand, answers 503 SlowDown, stalls (reads
the request, never answers) or drops the connection. ListPrefix and CheckMount hit S3;
SignURL does not, so it keeps working on the same mount while S3 misbehaves. botocore's
own retries are bounded (BUCKETVAULT_AWS_S3_MAX_ATTEMPTS) and the stand-in counts them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from bucketvault import errors
from bucketvault.client import BucketVaultClient, RetryPolicy
from bucketvault.errors import InvalidArgument
from bucketvault.grpc.status import error_info, retry_delay
from bucketvault.providers.aws.settings import AwsSettings
from bucketvault.testing.loopback import FaultyServer, StandInHandler
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.v1 import signer_pb2, signer_pb2_grpc

TENANT = "acme"
TIMEOUT = 1.0
ATTEMPTS = 2
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYS3FAULTS"

LISTING = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Name>photos</Name><Prefix></Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys>"
    b"<IsTruncated>false</IsTruncated><Contents><Key>a.jpg</Key>"
    b"<LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;e&quot;</ETag>"
    b"<Size>3</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>"
)
SLOW_DOWN = (
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    b"<RequestId>1</RequestId></Error>"
)


class FaultyS3(FaultyServer):
    """ListObjectsV2 and HeadBucket for any bucket; mode "ok", "slowdown", "stall" or "drop"."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        s3 = self

        class Handler(StandInHandler):
            def _answer(self) -> None:
                mode = s3.arrived()
                s3.paths.append(f"{self.command} {self.path}")
                if s3.misbehave(self, mode):
                    return
                if mode == "slowdown":
                    self.reply(503, SLOW_DOWN, "application/xml", {"Retry-After": "2"})
                    return
                self.reply(200, LISTING, "application/xml")

            do_GET = do_HEAD = _answer

        super().__init__(Handler)

    def set(self, mode: str) -> None:
        super().set(mode)
        self.paths.clear()


@pytest.fixture
def s3() -> Iterator[FaultyS3]:
    server = FaultyS3()
    yield server
    server.close()


@pytest.fixture
def world(s3: FaultyS3, tmp_path: Path) -> Iterator[tuple[RunningServer, str]]:
    env = {
        "AWS_ACCESS_KEY_ID": "AKIDSERVICE",
        "AWS_SECRET_ACCESS_KEY": "service-secret",
        "AWS_REGION": "us-east-1",
        "BUCKETVAULT_AWS_SERVICE_PRINCIPAL_ARN": "arn:aws:iam::111122223333:role/bv",
        "BUCKETVAULT_AWS_S3_TIMEOUT_SECONDS": str(TIMEOUT),
        "BUCKETVAULT_AWS_S3_CONNECT_TIMEOUT_SECONDS": str(TIMEOUT),
        "BUCKETVAULT_AWS_S3_MAX_ATTEMPTS": str(ATTEMPTS),
    }
    with start_server(tmp_path, env=env) as srv:
        c = srv.client()
        doc = {"access_key_id": "AKIDCUSTOMER", "secret_access_key": SECRET, "endpoint_url": s3.url}
        cred = c.register_credential(TENANT, "S3_ACCESS_KEY", doc, display_name="k")
        mount = c.create_mount(
            TENANT, name="p", bucket="photos", region="us-east-1", credential_id=cred.credential_id
        )
        yield srv, str(mount.mount_id)


def _once(srv: RunningServer) -> BucketVaultClient:
    """A client that does not retry: what the server answered is what the test sees."""
    return BucketVaultClient(srv.address, srv.admin_token, retry=RetryPolicy(max_attempts=1))


def _list_error(srv: RunningServer, mount_id: str) -> errors.BucketVaultError:
    with _once(srv) as client, pytest.raises(errors.BucketVaultError) as info:
        list(client.list_prefix(TENANT, mount_id, timeout=15))
    return info.value


def _raw_list(srv: RunningServer, mount_id: str) -> grpc.Call:
    with grpc.insecure_channel(srv.address) as channel:
        stub = signer_pb2_grpc.SignerServiceStub(channel)
        request = signer_pb2.ListPrefixRequest(tenant=TENANT, mount_id=mount_id)
        metadata = (("authorization", f"Bearer {srv.admin_token}"),)
        with pytest.raises(grpc.RpcError) as info:
            list(stub.ListPrefix(request, metadata=metadata, timeout=15))
    call = info.value
    assert isinstance(call, grpc.Call)
    return call


def _signs(srv: RunningServer, mount_id: str) -> None:
    url = srv.client().sign_url(TENANT, mount_id, "a.jpg", ttl_seconds=60).url
    assert "X-Amz-Signature=" in url


def _audited(srv: RunningServer, reason: str) -> list[str]:
    return [r.status for r in srv.client().query_audit(TENANT) if r.reason == reason]


def test_the_stand_in_lists_when_healthy(world: tuple[RunningServer, str], s3: FaultyS3) -> None:
    srv, mount_id = world
    keys = [e.key for p in srv.client().list_prefix(TENANT, mount_id) for e in p.entries]
    assert keys == ["a.jpg"]


def test_slowdown_is_resource_exhausted_with_retry_info(
    world: tuple[RunningServer, str], s3: FaultyS3
) -> None:
    srv, mount_id = world
    s3.set("slowdown")
    error = _list_error(srv, mount_id)
    assert (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "S3_THROTTLED")
    # botocore's standard mode retried, boundedly: exactly the configured attempts.
    assert s3.requests == ATTEMPTS, s3.paths
    call = _raw_list(srv, mount_id)
    assert call.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(call)[0] == "S3_THROTTLED"
    assert retry_delay(call) == pytest.approx(2.0)  # S3's Retry-After
    assert SECRET not in (call.details() or "")
    _signs(srv, mount_id)
    assert "RESOURCE_EXHAUSTED" in _audited(srv, "S3_THROTTLED")
    check = srv.client().check_mount(TENANT, mount_id)
    assert check.reason == "S3_THROTTLED"
    s3.set("ok")
    assert next(iter(srv.client().list_prefix(TENANT, mount_id))).entries


def test_a_stalled_s3_fails_unavailable_within_the_bounded_timeout(
    world: tuple[RunningServer, str], s3: FaultyS3
) -> None:
    srv, mount_id = world
    s3.set("stall")
    started = time.monotonic()
    error = _list_error(srv, mount_id)
    elapsed = time.monotonic() - started
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "S3_TIMEOUT")
    # Attempts x timeout plus jittered back-off, not botocore's 60 s default.
    assert elapsed < ATTEMPTS * TIMEOUT + 6, elapsed
    assert s3.requests == ATTEMPTS
    _signs(srv, mount_id)
    assert "UNAVAILABLE" in _audited(srv, "S3_TIMEOUT")
    # A caller's own deadline shorter than the S3 timeout is DEADLINE_EXCEEDED.
    with _once(srv) as client, pytest.raises(errors.DeadlineExceeded):
        list(client.list_prefix(TENANT, mount_id, timeout=TIMEOUT / 4))
    check = srv.client().check_mount(TENANT, mount_id)
    assert check.reason == "ENDPOINT_UNREACHABLE"


def test_a_dropped_connection_is_unavailable(
    world: tuple[RunningServer, str], s3: FaultyS3
) -> None:
    srv, mount_id = world
    s3.set("drop")
    error = _list_error(srv, mount_id)
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "S3_UNAVAILABLE")
    assert s3.requests == ATTEMPTS
    _signs(srv, mount_id)
    assert "UNAVAILABLE" in _audited(srv, "S3_UNAVAILABLE")


def test_s3_timeouts_are_configured_and_checked() -> None:
    default = AwsSettings.from_env({})
    assert (default.s3_read_timeout_seconds, default.s3_max_attempts) == (10.0, 3)
    s = AwsSettings.from_env(
        {"BUCKETVAULT_AWS_S3_TIMEOUT_SECONDS": "2", "BUCKETVAULT_AWS_S3_MAX_ATTEMPTS": "1"}
    )
    assert s.s3_config().retries == {"total_max_attempts": 1, "mode": "standard"}
    assert s.s3_config().read_timeout == 2.0
    for name, bad in (
        ("BUCKETVAULT_AWS_S3_TIMEOUT_SECONDS", "0"),
        ("BUCKETVAULT_AWS_S3_MAX_ATTEMPTS", "0"),
        ("BUCKETVAULT_AWS_S3_MAX_ATTEMPTS", "many"),
        ("BUCKETVAULT_AWS_S3_MAX_ATTEMPTS", "11"),
    ):
        with pytest.raises(InvalidArgument) as info:
            AwsSettings.from_env({name: bad})
        assert info.value.reason == "INVALID_CONFIG"
