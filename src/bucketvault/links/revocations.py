"""The revocation list, cached in memory: read from the store when older than the refresh
interval (on the open that finds it stale), and updated at once by this replica's own
revocations. Another replica's revocation takes effect here within one interval."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from bucketvault.clock import Clock
from bucketvault.store.base import LinkRevocationStore

Revoked = tuple[str, str, str]


class Revocations:
    def __init__(self, store: LinkRevocationStore, clock: Clock, refresh: timedelta) -> None:
        self._store = store
        self._clock = clock
        self._refresh = refresh
        self._lock = threading.Lock()
        self._revoked: frozenset[Revoked] = frozenset()
        self._added: set[Revoked] = set()
        self._fresh_until: datetime | None = None

    def is_revoked(self, tenant: str, mount_id: str, link_id: str) -> bool:
        """Whether the link is revoked; a store error on refresh propagates (fail closed)."""
        now = self._clock.now()
        if self._fresh_until is None or now >= self._fresh_until:
            with self._lock:
                if self._fresh_until is None or now >= self._fresh_until:
                    self._revoked = self._store.link_revocations()
                    self._added.clear()
                    self._fresh_until = now + self._refresh
        entry = (tenant, mount_id, link_id)
        return entry in self._revoked or entry in self._added

    def add(self, tenant: str, mount_id: str, link_id: str) -> None:
        """A revocation this replica just committed: effective here at once."""
        with self._lock:
            self._added.add((tenant, mount_id, link_id))


__all__ = ["Revocations"]
