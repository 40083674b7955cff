"""Cache-stable URLs: repeats within a window are byte-identical and served from a cache.

Through the real server (local providers, a frozen clock), and the rule itself
(providers/rules.py) with signers that end: a customer SAS keeps its fixed expiry and
an ended credential is refused by the real time of the call, not the floored one.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from core.secrets_fixtures import sample

from bucketvault import errors
from bucketvault.app.handles import Recent
from bucketvault.client import BucketVaultClient
from bucketvault.clock import FrozenClock
from bucketvault.models import Method, Mount, MountPolicy, SignOptions
from bucketvault.providers import rules
from bucketvault.providers.base import SAS_EXPIRY, SESSION_EXPIRY, SignedBatch
from bucketvault.testing.fakes import local_providers
from bucketvault.testing.server import RunningServer, start_server

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TTL = 600  # its window: 60 s


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def srv(tmp_path: Path, clock: FrozenClock) -> Iterator[RunningServer]:
    with start_server(tmp_path, clock=clock, providers=local_providers()) as s:
        yield s


def _mount(c: BucketVaultClient, *, stable: bool = True) -> tuple[str, str]:
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    mount = c.create_mount(
        "acme",
        name="m",
        bucket="b",
        credential_id=cred.credential_id,
        max_ttl_seconds=3600,
        cache_stable_urls=stable,
    )
    return mount.mount_id, cred.credential_id


def _at(clock: FrozenClock, seconds: float) -> None:
    clock.set(T0 + timedelta(seconds=seconds))


def test_the_window_is_a_tenth_of_the_ttl_between_1_and_300_s() -> None:
    assert [rules.stable_window(t) for t in (1, 9, 10, 600, 3000, 3010, 604800)] == [
        1,
        1,
        1,
        60,
        300,
        300,
        300,
    ]


def test_repeats_within_a_window_are_identical_and_cached(
    srv: RunningServer, clock: FrozenClock
) -> None:
    c = srv.client()
    mount_id, _ = _mount(c)
    cache = srv.service.app.handles.urls
    _at(clock, 61.4)
    first = c.sign_url("acme", mount_id, "a.jpg", ttl_seconds=TTL)
    hits = cache.hits
    _at(clock, 119.9)
    again = c.sign_url("acme", mount_id, "a.jpg", ttl_seconds=TTL)
    assert again.url == first.url
    assert again.expires_at == first.expires_at
    assert cache.hits == hits + 1
    # Signed at the window's start; it lives at most one window shorter than asked.
    expires = first.expires_at.ToDatetime(tzinfo=UTC)
    assert expires == T0 + timedelta(seconds=60 + TTL)
    assert expires >= T0 + timedelta(seconds=119.9 + TTL - rules.stable_window(TTL))
    # A batch mixes hits and misses, in order.
    batch = c.sign_urls("acme", mount_id, ["b.jpg", "a.jpg"], ttl_seconds=TTL)
    assert [u.key for u in batch] == ["b.jpg", "a.jpg"]
    assert batch[1].url == first.url
    assert {u.expires_at.ToDatetime(tzinfo=UTC) for u in batch} == {expires}
    # The next window signs afresh.
    _at(clock, 120)
    later = c.sign_url("acme", mount_id, "a.jpg", ttl_seconds=TTL)
    assert later.url != first.url
    assert later.expires_at.ToDatetime(tzinfo=UTC) == T0 + timedelta(seconds=120 + TTL)


def test_the_cached_url_is_the_one_the_signer_makes(srv: RunningServer, clock: FrozenClock) -> None:
    # The local provider's URL is an HMAC under the credential id of what was signed:
    # recompute it for the window's start.
    c = srv.client()
    mount_id, cred_id = _mount(c)
    _at(clock, 75)
    for _ in range(2):
        url = c.sign_url("acme", mount_id, "a.jpg", ttl_seconds=TTL).url
        stamp = f"GET|{(T0 + timedelta(seconds=60)).isoformat()}|{TTL}|a.jpg"
        mac = hmac.new(cred_id.encode(), stamp.encode(), hashlib.sha256).hexdigest()[:16]
        assert parse_qs(urlsplit(url).query)["s"] == [mac]
        assert urlsplit(url).path == "/" + quote("a.jpg")


def test_other_lifetimes_methods_and_overrides_are_other_urls(
    srv: RunningServer, clock: FrozenClock
) -> None:
    c = srv.client()
    mount_id, _ = _mount(c)
    _at(clock, 10)
    base = c.sign_url("acme", mount_id, "a.jpg", ttl_seconds=TTL).url
    assert c.sign_url("acme", mount_id, "a.jpg", ttl_seconds=TTL + 1).url != base
    assert c.sign_url("acme", mount_id, "a.jpg", method="HEAD", ttl_seconds=TTL).url != base
    with_override = c.sign_url(
        "acme", mount_id, "a.jpg", ttl_seconds=TTL, response_content_type="image/png"
    )
    assert (
        with_override.url
        == c.sign_url(
            "acme", mount_id, "a.jpg", ttl_seconds=TTL, response_content_type="image/png"
        ).url
    )
    # The local signer does not sign overrides, so the URL is the same: but it must not
    # have been the plain URL's cache entry (the scope names the overrides).
    assert len(srv.service.app.handles.urls) >= 3


def test_a_mount_can_turn_stable_urls_off(srv: RunningServer, clock: FrozenClock) -> None:
    c = srv.client()
    mount_id, _ = _mount(c, stable=False)
    assert c.get_mount("acme", mount_id).policy.disable_stable_urls
    _at(clock, 5.2)
    first = c.sign_url("acme", mount_id, "a.jpg", ttl_seconds=TTL)
    _at(clock, 5.8)
    same_second = c.sign_url("acme", mount_id, "a.jpg", ttl_seconds=TTL)
    _at(clock, 6)
    next_second = c.sign_url("acme", mount_id, "a.jpg", ttl_seconds=TTL)
    assert same_second.url == first.url
    assert next_second.url != first.url
    assert next_second.expires_at.ToDatetime(tzinfo=UTC) == T0 + timedelta(seconds=6 + TTL)
    assert len(srv.service.app.handles.urls) == 0


def test_a_rebind_or_a_revoke_invalidates(srv: RunningServer, clock: FrozenClock) -> None:
    c = srv.client()
    mount_id, cred_id = _mount(c)
    _at(clock, 10)
    before = c.sign_url("acme", mount_id, "a.jpg", ttl_seconds=TTL).url
    other = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC", "other"))
    version = c.get_mount("acme", mount_id).version
    c.rebind_mount("acme", mount_id, other.credential_id, expected_version=version)
    after = c.sign_url("acme", mount_id, "a.jpg", ttl_seconds=TTL).url
    assert after != before
    # Rebinding back gives a new mount version: signed again, not the first entry.
    c.rebind_mount("acme", mount_id, cred_id, expected_version=version + 1)
    assert c.sign_url("acme", mount_id, "a.jpg", ttl_seconds=TTL).url == before
    cache = srv.service.app.handles.urls
    misses = cache.misses
    c.sign_url("acme", mount_id, "a.jpg", ttl_seconds=TTL)
    assert cache.misses == misses
    held = len(cache)
    c.revoke_credential("acme", cred_id, reason="test")
    assert len(cache) < held
    with pytest.raises(errors.FailedPrecondition) as refused:
        c.sign_url("acme", mount_id, "a.jpg", ttl_seconds=TTL)
    assert refused.value.reason == "CREDENTIAL_REVOKED"


# -- the rule with signers that end ----------------------------------------------------


@dataclass(frozen=True)
class _Ending:
    valid_until: datetime | None
    limit_reason: str

    def sign(self, keys: Sequence[str], options: SignOptions) -> SignedBatch:
        return SignedBatch([f"https://x.invalid/{k}?t={options.signed_at:%s}" for k in keys])


@dataclass(frozen=True)
class _Handle:
    ending: _Ending

    def signer(self, mount: Mount, options: SignOptions) -> _Ending:
        return self.ending

    def list(self, mount: Mount, request: object) -> Iterator[object]:
        return iter(())

    def check(self, mount: Mount) -> object:
        return None

    def close(self) -> None:
        pass


def _a_mount(*, allow_lifetime: bool = True) -> Mount:
    policy = MountPolicy(3600, frozenset({Method.GET}), allow_lifetime)
    return Mount("mnt_x", "acme", "m", "b", "", "", "", "cred_x", policy, 1, T0, T0)


def _options(now: datetime, ttl: int = TTL) -> SignOptions:
    mount = _a_mount()
    return SignOptions(Method.GET, ttl, rules.signing_time(now, ttl, mount.policy), asked_at=now)


def _sign(ending: _Ending, now: datetime) -> list[object]:
    handle = _Handle(ending)
    return list(
        rules.sign_urls(handle, _a_mount(), ["k"], _options(now), 604800, rules.UrlCache())  # type: ignore[arg-type]
    )


def test_a_customer_sas_keeps_its_fixed_expiry() -> None:
    until = T0 + timedelta(seconds=1800)
    (signed,) = _sign(_Ending(until, SAS_EXPIRY), T0 + timedelta(seconds=59))
    assert signed.expires_at == until  # type: ignore[attr-defined]
    assert signed.expiry_capped_by == SAS_EXPIRY  # type: ignore[attr-defined]


def test_an_ended_credential_is_refused_by_the_real_time_not_the_floored_one() -> None:
    # Ended 10 s ago, though the window started before its end.
    now = T0 + timedelta(seconds=50)
    with pytest.raises(errors.FailedPrecondition) as sas:
        _sign(_Ending(T0 + timedelta(seconds=40), SAS_EXPIRY), now)
    assert sas.value.reason == "SAS_EXPIRED"
    session_end = T0 + rules.SESSION_SKEW + timedelta(seconds=40)
    with pytest.raises(errors.Unavailable) as session:
        _sign(_Ending(session_end, SESSION_EXPIRY), now)
    assert session.value.reason == "SESSION_EXPIRED"
    # Still alive: capped at its end less the skew, never past it.
    (signed,) = _sign(_Ending(session_end, SESSION_EXPIRY), T0 + timedelta(seconds=30))
    assert signed.expires_at == T0 + timedelta(seconds=40)  # type: ignore[attr-defined]


def test_the_cache_is_bounded() -> None:
    cache = rules.UrlCache(capacity=2)
    cache.put_many("s", "c1", [("a", "ua"), ("b", "ub")], {})
    assert cache.get_many("s", ["a"])[0] is not None  # a is now the most recent
    cache.put_many("s", "c2", [("c", "uc")], {})
    assert [x is not None for x in cache.get_many("s", ["a", "b", "c"])] == [True, False, True]
    cache.forget("c1")
    assert [x is not None for x in cache.get_many("s", ["a", "c"])] == [False, True]
    assert len(cache) == 1


def test_recent_reads_expire() -> None:
    recent: Recent[str] = Recent(seconds=0.05)
    recent.put("k", "v")
    assert recent.get("k") == "v"
    time.sleep(0.06)
    assert recent.get("k") is None
