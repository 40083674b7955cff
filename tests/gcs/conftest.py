"""Session-scoped peers for the GCS tests: fake-gcs-server, moto server, a token endpoint."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from gcs.gcsutil import (
    FAKE_GCS_BIN,
    TokenEndpoint,
    fill_listing_bucket,
    free_port,
    stop,
    wait_http,
)


@pytest.fixture(scope="session")
def rsa_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_rsa_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def token_server(rsa_key: RSAPrivateKey) -> Iterator[TokenEndpoint]:
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    server = TokenEndpoint(public_pem)
    yield server
    server.close()


@pytest.fixture
def token_endpoint(token_server: TokenEndpoint) -> TokenEndpoint:
    """The session's token endpoint with fresh counters and behaviour."""
    token_server.reset()
    return token_server


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """fake-gcs-server on 127.0.0.1 (in memory); yields its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("fake-gcs") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(FAKE_GCS_BIN),
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                str(port),
                "-backend",
                "memory",
                "-public-host",
                f"127.0.0.1:{port}",
                "-log-level",
                "error",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/storage/v1/b", proc)
        yield base
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Our own moto server (S3 stand-in for GCS's XML interoperability API)."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto-gcs") / "server.log"
    moto = Path(sys.executable).parent / "moto_server"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/moto-api/", proc)
        yield base
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def bucket(fake_gcs: str) -> str:
    """The fake-gcs-server bucket with 2,500 + 15 listing objects and a few odd names."""
    return fill_listing_bucket(fake_gcs)
