"""Drained shutdown: NOT_SERVING at once, new calls refused, in-flight calls finish
within the drain bound; and `bucketvault serve` doing it on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from core.secrets_fixtures import sample
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bucketvault import errors
from bucketvault.client import BucketVaultClient
from bucketvault.models import Credential, ListPage, ListRequest, Mount
from bucketvault.providers.base import CloudProvider, CredentialHandle
from bucketvault.providers.kinds import ParsedSecret
from bucketvault.testing.fakes import LocalHandle, LocalProvider, local_providers
from bucketvault.testing.server import BASE_ENV, RunningServer, start_server

TENANT = "acme"


@dataclass(frozen=True)
class SlowHandle(LocalHandle):
    """Lists only once the test lets it."""

    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def list(self, mount: Mount, request: ListRequest) -> Iterator[ListPage]:
        self.started.set()
        assert self.release.wait(30)
        yield from super().list(mount, request)


class SlowProvider(LocalProvider):
    def __init__(self, base: LocalProvider, started: threading.Event, release: threading.Event):
        super().__init__(base.name, base.kinds, base.max_url_seconds, ("a.jpg",))
        self.started, self.release = started, release

    def open(self, credential: Credential, secret: ParsedSecret) -> CredentialHandle:
        return SlowHandle(credential.credential_id, ("a.jpg",), self.started, self.release)


@dataclass
class Slow:
    server: RunningServer
    mount_id: str
    started: threading.Event
    release: threading.Event


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[Slow]:
    started, release = threading.Event(), threading.Event()
    providers: list[CloudProvider] = [
        SlowProvider(p, started, release) if p.name == "gcs" and isinstance(p, LocalProvider) else p
        for p in local_providers()
    ]
    with start_server(tmp_path, providers=providers) as srv:
        c = srv.client()
        cred = c.register_credential(TENANT, "GCS_HMAC", sample("GCS_HMAC"))
        mount = c.create_mount(TENANT, name="m", bucket="b", credential_id=cred.credential_id)
        try:
            yield Slow(srv, mount.mount_id, started, release)
        finally:
            release.set()


def _health(address: str) -> Any:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status


def _listing(client: BucketVaultClient, mount_id: str, out: dict[str, Any]) -> None:
    try:
        out["pages"] = list(client.list_prefix(TENANT, mount_id))
    except errors.BucketVaultError as exc:
        out["error"] = exc


def test_in_flight_stream_finishes_while_new_calls_are_refused(slow: Slow) -> None:
    srv, service = slow.server, slow.server.service
    assert service is not None
    assert _health(srv.address) == health_pb2.HealthCheckResponse.SERVING
    listed: dict[str, Any] = {}
    lister = threading.Thread(target=_listing, args=(srv.client(), slow.mount_id, listed))
    lister.start()
    assert slow.started.wait(10)
    drained: dict[str, Any] = {}
    stopper = threading.Thread(target=lambda: drained.update(service.shutdown(10)))
    stopper.start()
    deadline = time.monotonic() + 5
    while _health(srv.address) != health_pb2.HealthCheckResponse.NOT_SERVING:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with pytest.raises(errors.Unavailable) as refused:
        srv.client().get_mount(TENANT, slow.mount_id)
    assert refused.value.reason == "SHUTTING_DOWN"
    slow.release.set()
    lister.join(10)
    stopper.join(15)
    assert "error" not in listed
    assert [e.key for p in listed["pages"] for e in p.entries] == ["a.jpg"]
    assert drained["in_flight"] == 1 and drained["finished"] == 1
    assert drained["cancelled"] == 0 and drained["refused"] >= 1
    assert service.stopped


def test_a_call_outliving_the_drain_bound_is_cancelled(slow: Slow) -> None:
    service = slow.server.service
    assert service is not None
    listed: dict[str, Any] = {}
    lister = threading.Thread(target=_listing, args=(slow.server.client(), slow.mount_id, listed))
    lister.start()
    assert slow.started.wait(10)
    start = time.monotonic()
    report = service.shutdown(1.0)
    assert time.monotonic() - start < 4
    assert report["cancelled"] == 1 and report["finished"] == 0
    slow.release.set()
    lister.join(10)
    assert isinstance(listed.get("error"), errors.BucketVaultError)


def test_serve_drains_on_sigterm_and_logs_json(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env: Mapping[str, str] = {
        **os.environ,
        **BASE_ENV,
        "BUCKETVAULT_DATA_DIR": str(data_dir),
        "BUCKETVAULT_LISTEN": "127.0.0.1:0",
        "BUCKETVAULT_DRAIN_SECONDS": "3",
        "BUCKETVAULT_GRPC_WORKERS": "2",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bucketvault.cli.main", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening on" in first, first
        address = first.rsplit(" ", 1)[-1].strip()
        token = (data_dir / "admin.token").read_text().strip()
        with BucketVaultClient(address, token) as client:
            assert list(client.list_credentials(TENANT)) == []
        proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        _, stderr = proc.communicate(timeout=3 + 10)
        assert time.monotonic() - start < 3 + 5
        assert proc.returncode == 0, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    entries = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    rpc = [e for e in entries if e.get("method") == "/bucketvault.v1.VaultService/ListCredentials"]
    assert len(rpc) == 1 and rpc[0]["status"] == "OK" and rpc[0]["principal"] == "admin"
    drained = [e for e in entries if e["message"].startswith("drained")]
    assert len(drained) == 1
    assert drained[0]["drain"]["in_flight"] == 0
    assert token not in stderr
