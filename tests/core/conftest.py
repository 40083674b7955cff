"""Fixtures for the core service tests: a real server on localhost, moto for STS/KMS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bucketvault.testing.emulators import required, start_moto
from bucketvault.testing.fakes import offline_providers
from bucketvault.testing.loopback import CountingListener
from bucketvault.testing.ports import free_port  # noqa: F401 (re-exported for the tests)
from bucketvault.testing.server import RunningServer, start_server


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A moto server (STS, KMS) of the core tests' own, stopped at session end."""
    with required(start_moto()) as moto:
        yield moto.url


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


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    """A loopback port that counts connections (tests/core/test_urlpolicy.py, test_egress.py)."""
    lis = CountingListener()
    yield lis
    lis.close()
