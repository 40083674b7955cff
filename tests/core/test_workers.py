"""`bucketvault serve --workers 2`: one port, two processes, one verifiable audit log.

The supervisor runs as a real child process; the workers are its children. Calls go over
fresh channels (each its own TCP connection: a local subchannel pool, since gRPC would
otherwise share one connection between channels to the same address), so the kernel's
SO_REUSEPORT hashing spreads them over both workers. Which worker answered is read back
from the audit log: each worker writes its own chain, writer id `<base>-w<i>`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bucketvault.client import BucketVaultClient
from bucketvault.testing.server import BASE_ENV

TENANT = "acme"
BASE = "test"
WORKER_LINE = re.compile(r"worker (\d+) pid (\d+) writer (\S+) health (\S+)")
LISTENING = re.compile(r"listening on (127\.0\.0\.1:\d+) \((\d+) workers\)")


@dataclass
class Supervised:
    proc: subprocess.Popen[str]
    address: str
    token: str
    # index -> (pid, writer id, health address)
    workers: dict[int, tuple[int, str, str]]
    stderr: Path

    def client(self) -> BucketVaultClient:
        """A client on a channel of its own (its own connection, so its own worker)."""
        channel = grpc.insecure_channel(self.address, [("grpc.use_local_subchannel_pool", 1)])
        return BucketVaultClient(channel, self.token)


def _gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return int(stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status)


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Supervised]:
    data_dir = tmp_path / "data"
    stderr = tmp_path / "stderr.log"
    env = {
        **os.environ,
        **BASE_ENV,
        "BUCKETVAULT_DATA_DIR": str(data_dir),
        "BUCKETVAULT_AUDIT_WRITER_ID": BASE,
        "BUCKETVAULT_DRAIN_SECONDS": "3",
        "BUCKETVAULT_GRPC_WORKERS": "4",
    }
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bucketvault.cli.main",
                "serve",
                "--workers",
                "2",
                "--listen",
                "127.0.0.1:0",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    workers: dict[int, tuple[int, str, str]] = {}
    try:
        assert proc.stdout is not None
        address = ""
        for line in proc.stdout:
            if m := WORKER_LINE.search(line):
                workers[int(m[1])] = (int(m[2]), m[3], m[4])
            if m := LISTENING.search(line):
                address = m[1]
                assert m[2] == "2"
                break
        assert address, stderr.read_text()
        token = (data_dir / "admin.token").read_text().strip()
        yield Supervised(proc, address, token, workers, stderr)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid, _, _ in workers.values():
            if not _gone(pid, 0.1):
                os.kill(pid, signal.SIGKILL)


def test_both_workers_serve_one_port_and_one_verifiable_audit_log(supervised: Supervised) -> None:
    assert sorted(supervised.workers) == [0, 1]
    assert {w[1] for w in supervised.workers.values()} == {f"{BASE}-w0", f"{BASE}-w1"}
    # Ready means every worker answers on its own health port.
    for _, _, health_address in supervised.workers.values():
        assert _health(health_address) == health_pb2.HealthCheckResponse.SERVING
    with supervised.client() as admin:
        cred = admin.register_credential(
            TENANT,
            "S3_ACCESS_KEY",
            {
                "access_key_id": "AKIDWORKERS",
                "secret_access_key": "workers/secret",
                "endpoint_url": "http://127.0.0.1:9",
            },
        )
        mount = admin.create_mount(
            TENANT, name="m", bucket="b", credential_id=cred.credential_id, region="us-east-1"
        )
    for i in range(40):
        with supervised.client() as c:
            url = c.sign_url(TENANT, mount.mount_id, f"k/{i}.jpg", ttl_seconds=600)
            assert "X-Amz-Signature=" in url.url
    with supervised.client() as auditor:
        records = list(auditor.query_audit(TENANT))
        verdict = auditor.verify_audit(full=True)
    registered = {r.writer_id for r in records if r.action == "vault.register"}
    signers = [r.writer_id for r in records if r.action == "signer.sign" and r.outcome == "ok"]
    assert len(signers) == 40
    # Both workers signed, so one of them signed with a credential the other registered.
    assert set(signers) == {f"{BASE}-w0", f"{BASE}-w1"}
    assert len(registered) == 1 and set(signers) - registered
    assert verdict.ok, verdict.detail
    assert verdict.writers >= 2 and verdict.records_checked >= 42
    supervised.proc.send_signal(signal.SIGTERM)
    assert supervised.proc.wait(30) == 0, supervised.stderr.read_text()
    for pid, _, _ in supervised.workers.values():
        assert _gone(pid), f"worker pid {pid} outlived the supervisor"
    drained = [x for x in supervised.stderr.read_text().splitlines() if "drained" in x]
    assert len(drained) == 2


def test_a_killed_worker_stops_the_others_and_the_supervisor_fails(
    supervised: Supervised,
) -> None:
    victim, _, _ = supervised.workers[1]
    survivor, _, _ = supervised.workers[0]
    os.kill(victim, signal.SIGKILL)
    # Not restarted: the supervisor stops worker 0 (drained) and reports the failure.
    assert supervised.proc.wait(30) == 1
    assert _gone(victim) and _gone(survivor)
    log = supervised.stderr.read_text()
    assert "worker 1" in log and "no restart" in log
    assert "drained" in log


def test_sigint_drains_every_worker(supervised: Supervised) -> None:
    supervised.proc.send_signal(signal.SIGINT)
    assert supervised.proc.wait(30) == 0
    assert all(_gone(pid) for pid, _, _ in supervised.workers.values())


def test_workers_out_of_range_is_refused_before_anything_starts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = subprocess.run(
        [sys.executable, "-m", "bucketvault.cli.main", "serve", "--workers", "0"],
        env={**os.environ, **BASE_ENV, "BUCKETVAULT_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "BUCKETVAULT_WORKERS must be an integer between 1 and 64" in done.stderr
    assert not data_dir.exists()
