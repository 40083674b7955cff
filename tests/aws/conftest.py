"""Session-scoped moto server and LocalStack for the AWS provider tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aws.aws_support import Peer

from bucketvault.testing.emulators import required, start_localstack, start_moto


@pytest.fixture(scope="session")
def moto() -> Iterator[Peer]:
    """moto server (STS, S3) on 127.0.0.1:<free port>."""
    with required(start_moto()) as peer:
        yield peer


@pytest.fixture(scope="session")
def localstack() -> Iterator[Peer]:
    """LocalStack (S3 with SigV4 verification, STS) on 127.0.0.1:<free port>."""
    with required(start_localstack()) as peer:
        yield peer
