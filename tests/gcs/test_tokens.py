"""The service-account token cache: single-flight, refresh ahead of expiry, outage tolerance."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from gcs.gcsutil import TokenEndpoint, sa_info

from bucketvault.clock import FrozenClock
from bucketvault.errors import FailedPrecondition, Unavailable
from bucketvault.providers.gcs.tokens import TokenCache
from bucketvault.urlpolicy import UrlPolicy

START = datetime(2026, 5, 1, 8, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def cache(
    rsa_key: RSAPrivateKey, token_endpoint: TokenEndpoint, clock: FrozenClock
) -> Iterator[TokenCache]:
    policy = UrlPolicy(allow_insecure=True, token_uri_allowlist=frozenset({token_endpoint.url}))
    with requests.Session() as session:
        # Background refreshes run at once, so the test sees their effect on the next call.
        yield TokenCache(
            sa_info(rsa_key, token_endpoint.url), clock, policy, session, spawn=lambda work: work()
        )


def test_many_concurrent_callers_cause_one_grant(
    cache: TokenCache, token_endpoint: TokenEndpoint
) -> None:
    token_endpoint.state.delay = 0.3  # keep the grant in flight while the others arrive
    barrier = threading.Barrier(16)
    results: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        barrier.wait()
        token = cache.token()
        with lock:
            results.append(token)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert token_endpoint.state.grants == 1
    assert results == ["ya29.test-1"] * 16


def test_token_is_reused_then_refreshed_in_the_advisory_window(
    cache: TokenCache, token_endpoint: TokenEndpoint, clock: FrozenClock
) -> None:
    assert cache.token() == "ya29.test-1"
    clock.advance(timedelta(minutes=54))  # 6 minutes left: still fresh
    assert cache.token() == "ya29.test-1"
    assert token_endpoint.state.grants == 1
    clock.advance(timedelta(minutes=2))  # 4 minutes left: refresh ahead of expiry
    assert cache.token() == "ya29.test-1", "the current token serves while it refreshes"
    assert token_endpoint.state.grants == 2
    assert cache.token() == "ya29.test-2"
    assert cache.token() == "ya29.test-2"
    assert token_endpoint.state.grants == 2


def test_expires_in_from_the_endpoint_is_honoured(
    cache: TokenCache, token_endpoint: TokenEndpoint, clock: FrozenClock
) -> None:
    token_endpoint.state.expires_in = 600
    assert cache.token() == "ya29.test-1"
    clock.advance(timedelta(minutes=5, seconds=1))
    cache.token()  # inside the advisory window of a 10-minute token: refreshes
    assert cache.token() == "ya29.test-2"


def test_outage_in_advisory_window_keeps_serving_cached_token(
    cache: TokenCache, token_endpoint: TokenEndpoint, clock: FrozenClock
) -> None:
    assert cache.token() == "ya29.test-1"
    token_endpoint.state.mode = "error"
    clock.advance(timedelta(minutes=57))  # 3 minutes left: advisory, endpoint down
    assert cache.token() == "ya29.test-1"
    assert token_endpoint.state.grants >= 2  # it did try
    clock.advance(timedelta(minutes=2, seconds=30))  # 30 s left: inside the mandatory window
    with pytest.raises(Unavailable) as info:
        cache.token()
    assert info.value.reason == "GCS_TOKEN_UNAVAILABLE"
    token_endpoint.state.mode = "ok"
    clock.advance(timedelta(seconds=11))  # past the pause after a failure: tried again
    assert cache.token().startswith("ya29.test-")


def test_refused_key_is_a_failed_precondition_without_the_endpoint_text(
    cache: TokenCache, token_endpoint: TokenEndpoint
) -> None:
    token_endpoint.state.mode = "refuse"
    with pytest.raises(FailedPrecondition) as info:
        cache.token()
    assert info.value.reason == "GCS_TOKEN_REFUSED"
    assert "JWT" not in info.value.message
    assert "PRIVATE KEY" not in repr(info.value)


def test_repr_never_shows_the_token(cache: TokenCache) -> None:
    token = cache.token()
    assert token not in repr(cache)
    assert token not in repr(cache._tokens)
    assert token not in repr(cache._tokens.get())
