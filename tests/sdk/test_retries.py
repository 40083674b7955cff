"""Retries and deadlines, proven against a tiny stand-in Vault on 127.0.0.1.

GetMount (idempotent) fails UNAVAILABLE a set number of times, then answers;
CreateMount (not idempotent) always fails UNAVAILABLE; CheckMount sleeps past the
caller's deadline. Every handler counts its attempts.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from bucketvault import errors
from bucketvault.client import AsyncBucketVaultClient, BucketVaultClient, RetryPolicy
from bucketvault.client._common import Attempts
from bucketvault.v1 import vault_pb2, vault_pb2_grpc

FAST = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)


class Flaky(vault_pb2_grpc.VaultServiceServicer):
    def __init__(self) -> None:
        self.failures = 0
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def _fail_or(self, name: str, context: Any) -> None:
        with self.lock:
            self.calls[name] += 1
            failing = self.calls[name] <= self.failures
        if failing:
            context.abort(grpc.StatusCode.UNAVAILABLE, "down for a moment")

    def GetMount(self, request: Any, context: Any) -> vault_pb2.Mount:
        self._fail_or("GetMount", context)
        return vault_pb2.Mount(mount_id=request.mount_id, tenant=request.tenant)

    def CreateMount(self, request: Any, context: Any) -> vault_pb2.Mount:
        self.calls["CreateMount"] += 1
        context.abort(grpc.StatusCode.UNAVAILABLE, "down")

    def RegisterCredential(self, request: Any, context: Any) -> vault_pb2.Credential:
        self._fail_or("RegisterCredential", context)
        return vault_pb2.Credential(credential_id="cred_1")

    def CheckMount(self, request: Any, context: Any) -> vault_pb2.CheckMountResponse:
        self.calls["CheckMount"] += 1
        time.sleep(1.0)
        return vault_pb2.CheckMountResponse()


@pytest.fixture
def flaky() -> Iterator[tuple[str, Flaky]]:
    servicer = Flaky()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    vault_pb2_grpc.add_VaultServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(grace=None)


def test_sync_retries_unavailable_on_an_idempotent_call(flaky: tuple[str, Flaky]) -> None:
    address, servicer = flaky
    servicer.failures = 3
    with BucketVaultClient(address, retry=FAST) as c:
        assert c.get_mount("acme", "mnt_1").mount_id == "mnt_1"
    assert servicer.calls["GetMount"] == 4


def test_attempts_are_bounded(flaky: tuple[str, Flaky]) -> None:
    address, servicer = flaky
    servicer.failures = 10
    with BucketVaultClient(address, retry=FAST) as c, pytest.raises(errors.Unavailable):
        c.get_mount("acme", "mnt_1")
    assert servicer.calls["GetMount"] == 4


def test_non_idempotent_calls_are_not_retried(flaky: tuple[str, Flaky]) -> None:
    address, servicer = flaky
    servicer.failures = 2
    with BucketVaultClient(address, retry=FAST) as c:
        with pytest.raises(errors.Unavailable):
            c.create_mount("acme", name="m", bucket="b", credential_id="cred_1")
        sealed = vault_pb2.SealedSecret(key_id="k", sealed=b"x")
        with pytest.raises(errors.Unavailable):
            c.register_sealed("acme", "GCS_HMAC", sealed)
        # With an idempotency key a repeat is safe: retried past the second failure.
        assert c.register_sealed("acme", "GCS_HMAC", sealed, idempotency_key="k1").credential_id
    assert servicer.calls["CreateMount"] == 1
    assert servicer.calls["RegisterCredential"] == 3


def test_deadline_exceeded_is_its_own_error(flaky: tuple[str, Flaky]) -> None:
    address, servicer = flaky
    with BucketVaultClient(address, retry=FAST, timeout=5) as c:
        started = time.monotonic()
        with pytest.raises(errors.DeadlineExceeded) as caught:
            c.check_mount("acme", "mnt_1", timeout=0.2)
        assert time.monotonic() - started < 0.9
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert caught.value.reason == "DEADLINE_EXCEEDED"
    assert servicer.calls["CheckMount"] == 1  # not retried: only UNAVAILABLE is


def test_async_retries_the_same_way(flaky: tuple[str, Flaky]) -> None:
    address, servicer = flaky
    servicer.failures = 2

    async def run() -> None:
        async with AsyncBucketVaultClient(address, retry=FAST) as c:
            assert (await c.get_mount("acme", "mnt_1")).mount_id == "mnt_1"
            with pytest.raises(errors.Unavailable):
                await c.create_mount("acme", name="m", bucket="b", credential_id="c")
            with pytest.raises(errors.DeadlineExceeded):
                await c.check_mount("acme", "mnt_1", timeout=0.2)

    asyncio.run(run())
    assert servicer.calls["GetMount"] == 3
    assert servicer.calls["CreateMount"] == 1


def test_backoff_is_full_jitter_capped_and_within_the_deadline() -> None:
    class Top:
        def uniform(self, low: float, high: float) -> float:
            return high

    policy = RetryPolicy(max_attempts=5, initial_backoff=0.1, max_backoff=0.3)
    plan = Attempts(policy, None, idempotent=True, rng=Top())  # type: ignore[arg-type]
    delays = []
    for _ in range(5):
        plan.timeout()
        delays.append(plan.backoff(errors.Unavailable("x")))
    assert delays == [0.1, 0.2, 0.3, 0.3, None]
    # No wait that would end past the total deadline.
    late = Attempts(policy, 0.05, idempotent=True, rng=Top())  # type: ignore[arg-type]
    late.timeout()
    assert late.backoff(errors.Unavailable("x")) is None
    assert Attempts(policy, None, idempotent=True).backoff(errors.Internal("x")) is None
