"""Session-scoped peers for the GCS tests: fake-gcs-server, moto server, a token endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from gcs.gcsutil import TokenEndpoint, fill_listing_bucket

from bucketvault.testing.emulators import required, start_fake_gcs, start_moto


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
def fake_gcs() -> Iterator[str]:
    """fake-gcs-server on 127.0.0.1 (in memory); yields its base URL."""
    with required(start_fake_gcs()) as server:
        yield server.url


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """Our own moto server (S3 stand-in for GCS's XML interoperability API)."""
    with required(start_moto()) as server:
        yield server.url


@pytest.fixture(scope="session")
def bucket(fake_gcs: str) -> str:
    """The fake-gcs-server bucket with 2,500 + 15 listing objects and a few odd names."""
    return fill_listing_bucket(fake_gcs)
