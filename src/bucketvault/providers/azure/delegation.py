"""A user delegation key per storage account: cached, refreshed ahead, single-flight.

Get User Delegation Key is a network call with an Entra token behind it; signing must
not pay it per URL. One key serves every SAS of the account until it nears expiry:
- fresh (more than ``refresh_ahead`` left): returned as is;
- advisory window: one caller refreshes while the others keep using the old key, and
  a failed refresh keeps the old key;
- mandatory window (less than ``min_remaining`` left, or no key): callers wait for the
  one refresh in flight, and its error is theirs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bucketvault.clock import Clock
from bucketvault.providers.azure.sas import DelegationKey
from bucketvault.providers.azure.sas_token import parse_sas_time

# (start, expiry) -> the key the service issued for that window.
KeyFetcher = Callable[[datetime, datetime], DelegationKey]

# Azure rejects a key that starts in its future; start a little in the past.
_START_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class CachedKey:
    key: DelegationKey
    expires_at: datetime


class DelegationKeyCache:
    """Thread-safe holder of one account's current user delegation key."""

    def __init__(
        self,
        fetch: KeyFetcher,
        clock: Clock,
        *,
        lifetime: int,
        refresh_ahead: int,
        min_remaining: int,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lifetime = timedelta(seconds=lifetime)
        self._refresh_ahead = timedelta(seconds=refresh_ahead)
        self._min_remaining = timedelta(seconds=min_remaining)
        self._current: CachedKey | None = None
        # Held by the one caller fetching a new key: the single flight.
        self._refreshing = threading.Lock()
        self.fetches = 0

    def get(self) -> CachedKey:
        """The key to sign with now, fetching or refreshing it if due."""
        current = self._current
        now = self._clock.now()
        if current is not None and current.expires_at - now > self._refresh_ahead:
            return current
        if current is not None and current.expires_at - now > self._min_remaining:
            # Advisory window: refresh if nobody else is, else keep serving the old key.
            if self._refreshing.acquire(blocking=False):
                try:
                    return self._refresh_locked(current)
                except Exception:
                    return current
                finally:
                    self._refreshing.release()
            return current
        with self._refreshing:
            return self._refresh_locked(current)

    def _refresh_locked(self, seen: CachedKey | None) -> CachedKey:
        latest = self._current
        now = self._clock.now()
        if (
            latest is not seen
            and latest is not None
            and latest.expires_at - now > self._refresh_ahead
        ):
            return latest  # another caller refreshed while we waited
        start = (now - _START_SKEW).replace(microsecond=0)
        expiry = (now + self._lifetime).replace(microsecond=0)
        self.fetches += 1
        key = self._fetch(start, expiry)
        cached = CachedKey(key, parse_sas_time(key.signed_expiry, field="key expiry"))
        self._current = cached
        return cached

    def clear(self) -> None:
        """Forget the key (credential closed)."""
        self._current = None


__all__ = ["CachedKey", "DelegationKeyCache", "KeyFetcher"]
