"""One refresh-ahead cache for every expiring thing a provider holds.

AWS sessions, GCS access tokens and Azure user-delegation keys are the same problem
(botocore solves it once, with RefreshableCredentials): a value fetched over the
network, valid until an instant, that callers must never wait for in the common case.

* fresh: serve the cached value;
* advisory window: serve the cached value and refresh it in the background (one
  refresh at a time);
* mandatory window, or nothing cached: block and refresh; callers arriving together
  share one fetch (single flight);
* source failing: a value that is still usable keeps serving (also to callers in the
  mandatory window while another caller's fetch is in flight), and further attempts
  wait out ``retry_after``, counted from the failure's end, instead of stalling every
  caller on a dead endpoint; only when nothing usable is left does the caller get the
  fetch's error, and callers that waited on that fetch all get it together.

Only bucketvault errors count as failures of the source: providers translate their
SDK's exceptions at the boundary, and anything else is a bug that must surface.

A ``RefreshObserver`` sees hits, misses, fetches and what each holder holds (metrics,
spans around the fetch, which is the outbound cloud call). A holder takes the one that
``observing`` made current when the holder was made: providers are built with a fixed
signature and make some holders lazily inside calls (an Azure account's delegation key),
so the transport makes the service's observer current for each call it serves, rather
than every provider threading one through.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from bucketvault.clock import Clock
from bucketvault.errors import BucketVaultError, Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Expiring(Generic[T]):
    """A fetched value and when it stops working (None: it does not expire)."""

    value: T
    expires_at: datetime | None


@dataclass(frozen=True)
class RefreshWindows:
    """How long before expiry to refresh in the background / to block.

    ``usable_margin``: a value is served during an outage only while more than this is
    left (the AWS provider keeps URLs 5 minutes inside their session).
    """

    advisory: timedelta
    mandatory: timedelta
    retry_after: timedelta = timedelta(seconds=30)
    usable_margin: timedelta = timedelta(0)

    def for_lifetime(self, lifetime: timedelta) -> RefreshWindows:
        """Windows scaled down for short-lived values (never more than half / a quarter)."""
        return RefreshWindows(
            advisory=min(self.advisory, lifetime / 2),
            mandatory=min(self.mandatory, lifetime / 4),
            retry_after=self.retry_after,
            usable_margin=self.usable_margin,
        )


Spawn = Callable[[Callable[[], None]], None]


class RefreshObserver(Protocol):
    def served(self, what: str, hit: bool) -> None:
        """A caller got a cached value (hit) or waited for a fetch (miss)."""
        ...

    def fetching(self, what: str, background: bool) -> AbstractContextManager[None]:
        """Around one fetch; a BucketVaultError leaving it is a failed fetch."""
        ...

    def holding(self, holder: object, what: str, expires_at: datetime | None) -> None:
        """holder now holds a value expiring then (None also when it was closed)."""
        ...


class _Unobserved:
    def served(self, what: str, hit: bool) -> None:
        """Nothing."""

    def fetching(self, what: str, background: bool) -> AbstractContextManager[None]:
        """Nothing."""
        return nullcontext()

    def holding(self, holder: object, what: str, expires_at: datetime | None) -> None:
        """Nothing."""


UNOBSERVED: RefreshObserver = _Unobserved()
_ambient: contextvars.ContextVar[RefreshObserver] = contextvars.ContextVar(
    "bucketvault_refresh_observer", default=UNOBSERVED
)


@contextmanager
def observing(observer: RefreshObserver) -> Iterator[None]:
    """Holders made in the body (on this thread) report to observer."""
    token = _ambient.set(observer)
    try:
        yield
    finally:
        _ambient.reset(token)


def start_thread(work: Callable[[], None]) -> None:
    """Run work on a daemon thread (the default way to refresh in the background)."""
    threading.Thread(target=work, name="bucketvault-refresh", daemon=True).start()


@dataclass(frozen=True)
class _Entry(Generic[T]):
    held: Expiring[T]
    windows: RefreshWindows

    def left(self, now: datetime) -> timedelta | None:
        return None if self.held.expires_at is None else self.held.expires_at - now

    def fresh(self, now: datetime) -> bool:
        left = self.left(now)
        return left is None or left > self.windows.advisory

    def needs_block(self, now: datetime) -> bool:
        left = self.left(now)
        return left is not None and left <= self.windows.mandatory

    def usable(self, now: datetime) -> bool:
        left = self.left(now)
        return left is None or left > self.windows.usable_margin


class RefreshingValue(Generic[T]):
    """Thread-safe holder of one expiring value; see the module docstring."""

    def __init__(
        self,
        fetch: Callable[[], Expiring[T]],
        clock: Clock,
        windows: RefreshWindows,
        *,
        spawn: Spawn = start_thread,
        what: str = "value",
    ) -> None:
        self._fetch = fetch
        self._observer = _ambient.get()
        self._clock = clock
        self._windows = windows
        self._spawn = spawn
        self._what = what
        self._lock = threading.Lock()
        # Held for the whole of a fetch: that is what makes refreshes single-flight.
        self._fetching = threading.Lock()
        self._entry: _Entry[T] | None = None
        self._background = False
        self._quiet_until: datetime | None = None
        self._last_error: BucketVaultError | None = None
        # Fetches finished, ok or not (under _lock): how a waiter knows one ended.
        self._completed = 0
        self._closed = False
        self.fetches = 0

    def __repr__(self) -> str:
        return f"RefreshingValue(what={self._what!r})"

    def get(self) -> Expiring[T]:
        """The value to use now: cached, refreshed in the background, or fetched now."""
        now = self._clock.now()
        with self._lock:
            if self._closed:
                raise Unavailable("the credential was closed", reason="CREDENTIAL_CLOSED")
            entry = self._entry
            block = entry is None or entry.needs_block(now)
            start = entry is not None and not block and not entry.fresh(now)
            start = start and not self._background
            if start:
                self._background = True
            seen = self._completed
        if block and entry is not None and entry.usable(now) and self._fetching.locked():
            # A refresh is in flight and the held value still works: serve it rather than
            # queue behind a fetch that may be stalled on a dead endpoint.
            self._observer.served(self._what, True)
            return entry.held
        self._observer.served(self._what, not block)
        if entry is None or block:
            return self._refresh(blocking=True, seen=seen)
        if start:
            # Outside the lock: a spawn that runs the work at once must not deadlock.
            self._spawn(self._refresh_in_background)
        return entry.held

    def _refresh_in_background(self) -> None:
        try:
            self._refresh(blocking=False)
        except BucketVaultError as exc:
            log.warning("background refresh of a %s failed: %s", self._what, exc.reason)
        finally:
            with self._lock:
                self._background = False

    def _refresh(self, *, blocking: bool, seen: int | None = None) -> Expiring[T]:
        """Fetch now, single flight. seen: how many fetches had finished when the caller
        decided to block; one that finished since (while the caller waited for this
        lock) answers it too, failure included: waiters fail together, not in series."""
        with self._fetching:
            now = self._clock.now()
            with self._lock:
                entry = self._entry
                quiet = self._quiet_until is not None and now < self._quiet_until
                shared = seen is not None and seen != self._completed
            # Someone refreshed while we waited for the lock: done.
            if entry is not None and (
                entry.fresh(now) or (blocking and not entry.needs_block(now))
            ):
                return entry.held
            if quiet or (shared and self._last_error is not None):
                return self._fallback(entry, now)
            try:
                self.fetches += 1
                with self._observer.fetching(self._what, not blocking):
                    held = self._fetch()
            except BucketVaultError as exc:
                with self._lock:
                    # From the failure's end: a fetch that stalled for its whole budget
                    # must not leave the next caller free to stall again at once.
                    self._quiet_until = self._clock.now() + self._windows.retry_after
                    self._last_error = exc
                    self._completed += 1
                log.warning("refreshing a %s failed: %s", self._what, exc.reason)
                return self._fallback(entry, now)
            windows = self._windows
            if held.expires_at is not None:
                windows = windows.for_lifetime(held.expires_at - now)
            with self._lock:
                kept = not self._closed
                if kept:
                    self._entry = _Entry(held, windows)
                self._quiet_until = None
                self._last_error = None
                self._completed += 1
            if kept:
                self._observer.holding(self, self._what, held.expires_at)
            return held

    def _fallback(self, entry: _Entry[T] | None, now: datetime) -> Expiring[T]:
        if entry is not None and entry.usable(now):
            return entry.held
        error = self._last_error
        if error is not None:
            raise error
        raise Unavailable(f"no {self._what} is available", reason="REFRESH_UNAVAILABLE")

    def close(self) -> None:
        """Forget the value; later calls fail."""
        with self._lock:
            self._closed = True
            self._entry = None
        self._observer.holding(self, self._what, None)


__all__ = [
    "UNOBSERVED",
    "Expiring",
    "RefreshObserver",
    "RefreshWindows",
    "RefreshingValue",
    "Spawn",
    "observing",
    "start_thread",
]
