"""Session-scoped moto server and LocalStack for the AWS provider tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from aws.aws_support import LOCALSTACK_PY, MOTO_BIN, Peer, free_port, stop, wait_http


@pytest.fixture(scope="session")
def moto() -> Iterator[Peer]:
    """moto server (STS, S3) on 127.0.0.1:<free port>."""
    port = free_port()
    proc = subprocess.Popen(
        [str(MOTO_BIN), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/moto-api/", proc)
        yield Peer(url, proc)
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def localstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """LocalStack (S3 with SigV4 verification, STS) on 127.0.0.1:<free port>."""
    if not LOCALSTACK_PY.exists():
        pytest.skip("LocalStack is not installed (make localstack)")
    port = free_port()
    volume = tmp_path_factory.mktemp("localstack")
    env = {
        **os.environ,
        "GATEWAY_SERVER": "hypercorn",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "SERVICES": "s3,sts,iam",
        "S3_SKIP_SIGNATURE_VALIDATION": "0",
        "DISABLE_EVENTS": "1",
        "DNS_ADDRESS": "0",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "LOCALSTACK_VOLUME_DIR": str(volume),
    }
    proc = subprocess.Popen(
        [str(LOCALSTACK_PY), "-m", "localstack.runtime.main"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/_localstack/health", proc, timeout=90)
        yield Peer(url, proc)
    finally:
        stop(proc)
