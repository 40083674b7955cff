"""An STS that accepts connections and never answers.

Health tells the truth meanwhile: ``bucketvault.dependency.sts`` goes NOT_SERVING after
an outage (SERVING again once STS answers) while the process stays SERVING; a caller's
own deadline shorter than the STS timeout is DEADLINE_EXCEEDED in the SDK.

botocore's read timeout bounds each call (BUCKETVAULT_AWS_STS_TIMEOUT_SECONDS), the
retry budget bounds one AssumeRole (BUCKETVAULT_AWS_STS_BUDGET_SECONDS): concurrent cold
signers share one stalled refresh and all fail UNAVAILABLE together, within about one
timeout, not one timeout each; a warm session keeps signing while STS stalls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from aws.aws_support import ROLE_ARN, free_port
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bucketvault import errors
from bucketvault.clock import FrozenClock
from bucketvault.errors import InvalidArgument, Unavailable
from bucketvault.providers.aws.credentials import AwsCredentials
from bucketvault.providers.aws.settings import AwsSettings
from bucketvault.providers.aws.sts import (
    AssumeRoleRequest,
    Backoff,
    StsUnavailable,
    assume_role_with_retry,
)
from bucketvault.providers.refresh import Expiring, RefreshingValue, RefreshWindows
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.testing.sts import RecordingSts

TIMEOUT = 2.0
BUDGET = 3.0
STS_HEALTH = "bucketvault.dependency.sts"


class StallingSts(RecordingSts):
    """RecordingSts until stall(): then every request is read and never answered (until
    close releases the handlers)."""

    def __init__(self) -> None:
        super().__init__()
        self.stalling = threading.Event()
        self.released = threading.Event()
        self.stalled = 0

    def stall(self) -> None:
        self.stalling.set()

    def _answer(self, form: dict[str, str]) -> tuple[int, bytes]:
        if self.stalling.is_set():
            with self._lock:
                self.stalled += 1
            self.released.wait(60)
            return 503, b""
        return super()._answer(form)

    def close(self) -> None:
        self.released.set()
        super().close()


@pytest.fixture
def sts() -> Iterator[StallingSts]:
    server = StallingSts()
    yield server
    server.close()


def _env(sts: StallingSts) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_STS": sts.url,
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{free_port()}",
        "AWS_ACCESS_KEY_ID": "AKIDSERVICE",
        "AWS_SECRET_ACCESS_KEY": "service-secret",
        "AWS_REGION": "us-east-1",
        "BUCKETVAULT_AWS_SERVICE_PRINCIPAL_ARN": "arn:aws:iam::111122223333:role/bv",
        "BUCKETVAULT_AWS_STS_TIMEOUT_SECONDS": str(TIMEOUT),
        "BUCKETVAULT_AWS_STS_BUDGET_SECONDS": str(BUDGET),
    }


def _role_mount(srv: RunningServer) -> str:
    c = srv.client()
    cred = c.register_credential("acme", "AWS_ROLE", {"role_arn": ROLE_ARN}, display_name="r")
    m = c.create_mount(
        "acme", name="r", bucket="photos", region="us-east-1", credential_id=cred.credential_id
    )
    return str(m.mount_id)


def _together(srv: RunningServer, mount_id: str, n: int) -> list[tuple[str, float]]:
    """n SignURLs released at once: (outcome, seconds) each."""
    clients = [srv.client() for _ in range(n)]
    gate = threading.Barrier(n)
    out: list[tuple[str, float]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        gate.wait()
        start = time.monotonic()
        try:
            clients[i].sign_url("acme", mount_id, f"k{i}.jpg", ttl_seconds=600)
            what = "ok"
        except errors.BucketVaultError as exc:
            what = f"{exc.code.name}/{exc.reason}"
        with lock:
            out.append((what, time.monotonic() - start))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return out


def test_cold_signers_share_one_stalled_refresh_and_fail_together(
    sts: StallingSts, tmp_path: Path
) -> None:
    n = 6
    with start_server(tmp_path, env=_env(sts)) as srv:
        mount_id = _role_mount(srv)
        sts.stall()
        started = time.monotonic()
        out = _together(srv, mount_id, n)
        wall = time.monotonic() - started
        assert [w for w, _ in out] == ["UNAVAILABLE/STS_UNAVAILABLE"] * n, out
        # About one read timeout for all of them: not n x timeout, not 4 attempts each.
        assert wall < TIMEOUT + 2.5, (wall, out)
        assert sts.stalled == 1, "one AssumeRole for every waiting caller (single flight)"
        # The back-off runs from the failure's end: the next caller fails at once.
        quick = _together(srv, mount_id, 1)
        assert quick[0][0] == "UNAVAILABLE/STS_UNAVAILABLE" and quick[0][1] < 1.0, quick
        assert sts.stalled == 1


def test_a_warm_session_keeps_signing_while_sts_stalls(sts: StallingSts, tmp_path: Path) -> None:
    clock = FrozenClock(datetime.now(UTC))
    with start_server(tmp_path, env=_env(sts), clock=clock) as srv:
        mount_id = _role_mount(srv)
        assert _together(srv, mount_id, 1)[0][0] == "ok"
        sts.stall()
        # 90 minutes left of the 6-hour session: the advisory window, refreshed in the
        # background (which stalls); callers are served from the cache at once.
        clock.advance(timedelta(hours=4, minutes=30))
        for _ in range(10):
            [(what, seconds)] = _together(srv, mount_id, 1)
            assert what == "ok" and seconds < 1.0, (what, seconds)
        # 50 minutes left: the mandatory window. One caller waits for the (stalled)
        # refresh, at most one budget; it and everyone else get the held session.
        clock.advance(timedelta(minutes=40))
        out = _together(srv, mount_id, 6)
        assert [w for w, _ in out] == ["ok"] * 6, out
        assert max(s for _, s in out) < BUDGET + 2.0, out
        assert sts.stalled >= 1


# -- units: the retry budget and the refresh holder ---------------------------------


class _Stalled:
    def __init__(self, seconds: float, clock: list[float]) -> None:
        self.seconds = seconds
        self.clock = clock
        self.calls = 0

    def assume_role(self, request: AssumeRoleRequest) -> AwsCredentials:
        self.calls += 1
        self.clock[0] += self.seconds
        raise StsUnavailable("STS could not be reached (ReadTimeoutError)")

    def caller_arn(self) -> str:
        return ""


def _request() -> AssumeRoleRequest:
    return AssumeRoleRequest(ROLE_ARN, "bv.acme.c", "ext", 3600)


@pytest.mark.parametrize(("seconds", "calls"), [(5.0, 1), (0.01, 4), (2.5, 3), (3.0, 2)])
def test_retries_fit_the_budget(seconds: float, calls: int) -> None:
    now = [0.0]
    gateway = _Stalled(seconds, now)

    def sleep(pause: float) -> None:
        now[0] += pause

    backoff = Backoff(sleep=sleep, rng=lambda: 0.5, budget_seconds=8.0, monotonic=lambda: now[0])
    with pytest.raises(Unavailable):
        assume_role_with_retry(gateway, _request(), backoff)
    assert gateway.calls == calls
    assert now[0] <= 8.0


def test_waiters_on_a_failed_fetch_fail_together_and_back_off_from_its_end() -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    entered, release = threading.Event(), threading.Event()
    fetches = [0]

    def fetch() -> Expiring[str]:
        fetches[0] += 1
        entered.set()
        release.wait(10)
        clock.advance(timedelta(seconds=40))  # the fetch stalled for 40 s
        raise StsUnavailable("stalled")

    windows = RefreshWindows(timedelta(minutes=10), timedelta(minutes=5), timedelta(seconds=30))
    value = RefreshingValue(fetch, clock, windows)
    errors_seen: list[str] = []

    def get() -> None:
        try:
            value.get()
        except Unavailable as exc:
            errors_seen.append(exc.reason)

    first = threading.Thread(target=get)
    first.start()
    entered.wait(5)
    waiters = [threading.Thread(target=get) for _ in range(5)]
    for w in waiters:
        w.start()
    time.sleep(0.2)
    release.set()
    for t in [first, *waiters]:
        t.join(5)
    assert errors_seen == ["STS_UNAVAILABLE"] * 6
    assert fetches[0] == 1, "the waiters shared the one fetch"
    clock.advance(timedelta(seconds=20))  # 20 s after the failure's end: still quiet
    with pytest.raises(Unavailable):
        value.get()
    assert fetches[0] == 1


def test_sts_timeouts_are_configured_and_checked() -> None:
    assert AwsSettings.from_env({}).sts_read_timeout_seconds == 5.0
    s = AwsSettings.from_env(
        {
            "BUCKETVAULT_AWS_STS_CONNECT_TIMEOUT_SECONDS": "1.5",
            "BUCKETVAULT_AWS_STS_TIMEOUT_SECONDS": "2",
            "BUCKETVAULT_AWS_STS_BUDGET_SECONDS": "4",
        }
    )
    assert (s.sts_connect_timeout_seconds, s.sts_read_timeout_seconds) == (1.5, 2.0)
    assert s.sts_budget_seconds == 4.0
    for bad in ("0", "-1", "soon", "301"):
        with pytest.raises(InvalidArgument) as info:
            AwsSettings.from_env({"BUCKETVAULT_AWS_STS_TIMEOUT_SECONDS": bad})
        assert info.value.reason == "INVALID_CONFIG"


# -- health while STS stalls ----------------------------------------------------------


def _health(srv: RunningServer, service: str) -> str:
    with grpc.insecure_channel(srv.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(status))


def test_health_names_the_stalled_sts_and_the_process_keeps_serving(
    sts: StallingSts, tmp_path: Path
) -> None:
    clock = FrozenClock(datetime.now(UTC))
    with start_server(tmp_path, env=_env(sts), clock=clock) as srv:
        assert _health(srv, STS_HEALTH) == "UNKNOWN", "no STS call yet"
        warm = _role_mount(srv)
        assert _together(srv, warm, 1)[0][0] == "ok"
        assert _health(srv, STS_HEALTH) == "SERVING"
        c = srv.client()
        cred = c.register_credential("acme", "AWS_ROLE", {"role_arn": ROLE_ARN}, display_name="c")
        cold = c.create_mount(
            "acme", name="c", bucket="photos", region="us-east-1", credential_id=cred.credential_id
        ).mount_id
        sts.stall()
        out = _together(srv, cold, 2)
        assert [w for w, _ in out] == ["UNAVAILABLE/STS_UNAVAILABLE"] * 2, out
        # The dependency is named NOT_SERVING; the process and its services still serve
        # (the store answers; the warm session, and mounts on other clouds, still sign).
        assert _health(srv, STS_HEALTH) == "NOT_SERVING"
        assert _health(srv, "") == "SERVING"
        assert _health(srv, "bucketvault.v1.SignerService") == "SERVING"
        assert _together(srv, warm, 1)[0][0] == "ok"
        # STS answers again: after the back-off the next call gets a session.
        sts.stalling.clear()
        clock.advance(timedelta(seconds=31))
        assert _together(srv, cold, 1)[0][0] == "ok"
        assert _health(srv, STS_HEALTH) == "SERVING"


def test_a_callers_deadline_shorter_than_the_sts_timeout_is_deadline_exceeded(
    sts: StallingSts, tmp_path: Path
) -> None:
    with start_server(tmp_path, env=_env(sts)) as srv:
        mount_id = _role_mount(srv)
        sts.stall()
        client = srv.client()
        with pytest.raises(errors.DeadlineExceeded) as info:
            client.sign_url("acme", mount_id, "k.jpg", timeout=TIMEOUT / 4)
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        # The refresh it left behind still ends within one read timeout, for everyone.
        [(what, _)] = _together(srv, mount_id, 1)
        assert what == "UNAVAILABLE/STS_UNAVAILABLE"
