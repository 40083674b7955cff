"""A user delegation key per storage account, kept by the shared refresh-ahead cache.

Get User Delegation Key is a network call with an Entra token behind it; signing must
not pay it per URL. One key serves every SAS of the account until it nears expiry:
refreshed in the background ``refresh_ahead`` before it expires, fetched while callers
wait only when less than ``min_remaining`` is left (see providers/refresh.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bucketvault.clock import Clock
from bucketvault.providers.azure.kinds import parse_sas_time
from bucketvault.providers.azure.sas import DelegationKey
from bucketvault.providers.refresh import (
    Expiring,
    RefreshingValue,
    RefreshWindows,
    Spawn,
    start_thread,
)

# (start, expiry) -> the key the service issued for that window.
KeyFetcher = Callable[[datetime, datetime], DelegationKey]

# Azure rejects a key that starts in its future; start a little in the past.
_START_SKEW = timedelta(minutes=5)


def delegation_keys(
    fetch: KeyFetcher,
    clock: Clock,
    *,
    lifetime: int,
    refresh_ahead: int,
    min_remaining: int,
    spawn: Spawn = start_thread,
) -> RefreshingValue[DelegationKey]:
    """The refreshing holder of one account's current user delegation key."""

    def fetch_now() -> Expiring[DelegationKey]:
        now = clock.now()
        start = (now - _START_SKEW).replace(microsecond=0)
        expiry = (now + timedelta(seconds=lifetime)).replace(microsecond=0)
        key = fetch(start, expiry)
        return Expiring(key, parse_sas_time(key.signed_expiry, field="key expiry"))

    windows = RefreshWindows(
        advisory=timedelta(seconds=refresh_ahead),
        mandatory=timedelta(seconds=min_remaining),
        usable_margin=timedelta(seconds=min_remaining),
    )
    return RefreshingValue(fetch_now, clock, windows, spawn=spawn, what="user delegation key")


__all__ = ["KeyFetcher", "delegation_keys"]
