"""Fixtures for the core service tests: a real server on localhost, moto for STS/KMS."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bucketvault.testing.fakes import offline_providers
from bucketvault.testing.server import RunningServer, start_server

MOTO_BIN = Path(sys.executable).parent / "moto_server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A moto server (STS, KMS) of the core tests' own, stopped at session end."""
    port = free_port()
    proc = subprocess.Popen(
        [str(MOTO_BIN), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url + "/moto-api/", timeout=1)
                break
            except requests.RequestException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def aws_env(moto_url: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_STS": moto_url,
        "AWS_ENDPOINT_URL_KMS": moto_url,
        "BUCKETVAULT_AWS_SERVICE_PRINCIPAL_ARN": "arn:aws:iam::111122223333:role/bucketvault",
    }


PRINCIPALS = [
    ("viewer", ["signer"], ["acme"]),
    ("globex-ops", ["operator"], ["globex"]),
    ("auditor", ["auditor"], ["*"]),
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """The core alone (no cloud providers): registration, mounts, auth, audit.

    Cloud providers verify credentials with their clouds at registration; their own
    suites run them against emulators. Here every mount answers UNIMPLEMENTED.
    """
    with start_server(tmp_path, principals=PRINCIPALS, providers=offline_providers()) as srv:
        yield srv
