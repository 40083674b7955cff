"""PostgreSQL going away under load: requests fail UNAVAILABLE, never with a wrong answer,
and the service recovers by itself once the database is back."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
from core.secrets_fixtures import sample
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bucketvault import errors
from bucketvault.storehealth import PROBE_SECONDS
from bucketvault.testing.emulators import required
from bucketvault.testing.fakes import local_providers
from bucketvault.testing.postgres import start_postgres
from bucketvault.testing.server import start_server

pytestmark = pytest.mark.postgres


def test_requests_fail_unavailable_while_the_database_is_down_then_recover(
    tmp_path: Path,
) -> None:
    # A server of its own: pausing the session's would break the other tests.
    with required(start_postgres()) as pg:
        env = {"BUCKETVAULT_STORE": pg.create_database()}
        with start_server(tmp_path, env=env, providers=local_providers()) as srv:
            c = srv.client()
            cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
            mount = c.create_mount("acme", name="p", bucket="b", credential_id=cred.credential_id)
            expected = c.sign_url("acme", mount.mount_id, "a.jpg").url.split("?")[0]
            stop = threading.Event()
            outcomes: Counter[str] = Counter()
            wrong: list[str] = []

            def load() -> None:
                while not stop.is_set():
                    try:
                        url = c.sign_url("acme", mount.mount_id, "a.jpg").url
                    except errors.Unavailable as exc:
                        outcomes[f"UNAVAILABLE/{exc.reason}"] += 1
                    except errors.BucketVaultError as exc:
                        wrong.append(f"{type(exc).__name__}/{exc.reason}")
                    else:
                        outcomes["ok"] += 1
                        if url.split("?")[0] != expected:
                            wrong.append(url)

            threads = [threading.Thread(target=load) for _ in range(2)]
            for t in threads:
                t.start()
            try:
                time.sleep(0.5)
                pg.pause()
                time.sleep(2)
                down = Counter(outcomes)
                pg.resume()
                deadline = time.monotonic() + 30
                ok_before = outcomes["ok"]
                while outcomes["ok"] < ok_before + 20 and time.monotonic() < deadline:
                    time.sleep(0.1)
            finally:
                stop.set()
                for t in threads:
                    t.join()
            assert wrong == []
            assert any(k.startswith("UNAVAILABLE/") for k in down), down
            assert outcomes["ok"] >= ok_before + 20, "recovered by itself"
            verdict = c.verify_audit()
            assert verdict.ok, verdict.detail


def _health(address: str) -> str:
    with grpc.insecure_channel(address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="bucketvault.v1.SignerService"), timeout=5
        )
    return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)


def _until(want: str, address: str, seconds: float) -> float:
    start = time.monotonic()
    while _health(address) != want and time.monotonic() - start < seconds:
        time.sleep(0.2)
    return time.monotonic() - start


def test_health_goes_not_serving_while_the_database_is_down(tmp_path: Path) -> None:
    with required(start_postgres()) as pg:
        env = {"BUCKETVAULT_STORE": pg.create_database()}
        with start_server(tmp_path, env=env, providers=local_providers()) as srv:
            assert _health(srv.address) == "SERVING"
            bound = PROBE_SECONDS + 3.0  # a probe interval, the poll, and a loaded machine
            pg.pause()
            try:
                assert _until("NOT_SERVING", srv.address, bound) <= bound
            finally:
                pg.resume()
            assert _until("SERVING", srv.address, bound) <= bound
