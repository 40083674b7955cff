"""Delegation-key cache windows and SAS token parsing, with fakes at the seams."""

from __future__ import annotations

import datetime as dt

import pytest

from bucketvault.clock import FrozenClock
from bucketvault.errors import InvalidArgument, Unavailable
from bucketvault.providers.azure.delegation import delegation_keys
from bucketvault.providers.azure.kinds import account_name_from_url, parse_sas_time, parse_sas_token
from bucketvault.providers.azure.sas import DelegationKey, sas_time
from bucketvault.providers.refresh import RefreshingValue

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class FakeService:
    """Issues keys valid for the window asked, or fails when told to."""

    def __init__(self) -> None:
        self.fail = False
        self.calls = 0

    def __call__(self, start: dt.datetime, expiry: dt.datetime) -> DelegationKey:
        self.calls += 1
        if self.fail:
            # What fetch_delegation_key raises once it has translated the SDK's error.
            raise Unavailable("token endpoint down", reason="AZURE_UNREACHABLE")
        return DelegationKey(
            "o", "t", sas_time(start), sas_time(expiry), "b", "v", f"k{self.calls}"
        )


def cache(clock: FrozenClock, service: FakeService) -> RefreshingValue[DelegationKey]:
    # Background refreshes run at once: each call sees what the previous one started.
    return delegation_keys(
        service,
        clock,
        lifetime=3600,
        refresh_ahead=600,
        min_remaining=60,
        spawn=lambda work: work(),
    )


def test_fresh_key_is_reused_then_refreshed_ahead() -> None:
    clock, service = FrozenClock(T0), FakeService()
    keys = cache(clock, service)
    first = keys.get()
    assert keys.get() is first and service.calls == 1
    clock.advance(3600 - 599)  # inside the refresh-ahead window
    assert keys.get() is first, "the old key serves while the new one is fetched"
    assert keys.get().value.value == "k2"


def test_failed_advisory_refresh_keeps_the_old_key() -> None:
    clock, service = FrozenClock(T0), FakeService()
    keys = cache(clock, service)
    first = keys.get()
    service.fail = True
    clock.advance(3600 - 300)
    assert keys.get() is first  # advisory: the old key still serves
    clock.advance(250)  # 50 s left: mandatory window, the error surfaces
    with pytest.raises(Unavailable):
        keys.get()


def test_a_bug_in_the_fetch_is_not_taken_for_an_outage() -> None:
    # Only translated (bucketvault) errors mean "the source is down": anything else is a
    # bug and surfaces, even while an old key could still serve.
    clock = FrozenClock(T0)
    calls: list[int] = []

    def fetch(start: dt.datetime, expiry: dt.datetime) -> DelegationKey:
        calls.append(1)
        if len(calls) > 1:
            raise KeyError("bug")
        return DelegationKey("o", "t", sas_time(start), sas_time(expiry), "b", "v", "k1")

    keys = delegation_keys(
        fetch, clock, lifetime=3600, refresh_ahead=600, min_remaining=60, spawn=lambda w: w()
    )
    keys.get()
    clock.advance(3600 - 300)
    with pytest.raises(KeyError):
        keys.get()


def test_sas_token_parsing() -> None:
    token = parse_sas_token("?sv=2024-08-04&sr=c&sp=rl&se=2026-02-01T00:00Z&sig=abc%2B")
    assert (token.kind, token.permissions, token.expiry) == (
        "service",
        "rl",
        dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
    )
    assert "abc" not in repr(token)
    account = parse_sas_token("sv=2024-08-04&ss=b&srt=co&sp=r&se=2026-02-01&sig=x")
    assert account.kind == "account"
    for bad in (
        "sv=1&sr=b&sp=r&se=2026-02-01&sig=x",  # one blob only
        "sv=1&ss=q&srt=co&sp=r&se=2026-02-01&sig=x",  # not the blob service
        "sv=1&sr=c&sp=r&se=tomorrow&sig=x",
        "sv=1&sr=c&sp=r&se=2026-02-01",
    ):
        with pytest.raises(InvalidArgument):
            parse_sas_token(bad)
    assert parse_sas_time("2026-02-01T10:11:12.5Z", field="x") == dt.datetime(
        2026, 2, 1, 10, 11, 12, tzinfo=dt.UTC
    )


def test_account_name_from_url() -> None:
    assert account_name_from_url("https://acme.blob.core.windows.net") == "acme"
    assert account_name_from_url("http://127.0.0.1:10000/devstoreaccount1") == "devstoreaccount1"
