"""A refreshing cache of one credential's assumed-role session.

Like botocore's RefreshableCredentials, with our clock and our failure rules:

* fresh: serve the cached session;
* advisory window: serve the cached session and refresh it in the background;
* mandatory window (or no session): block and refresh, one STS call however many
  callers arrive together (single-flight);
* STS failing: a session that is still usable keeps serving (URLs get capped to it),
  and further STS attempts wait out a short back-off instead of stalling every caller.

Why these windows (6-hour sessions): URLs are capped at session expiry minus SKEW, and
normal URL TTLs are up to an hour. The mandatory window starts when less than
1 h + SKEW + 5 min remain, so a blocking refresh happens before a 1-hour URL would be cut
short; the advisory window starts 30 minutes earlier, so in practice the refresh happens
in the background and no caller ever blocks. Short sessions (a role capped at 1 hour)
scale both windows down to fractions of the session: those URLs are capped, and the
credential carries a warning saying how to fix the role.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bucketvault.clock import Clock
from bucketvault.errors import BucketVaultError, Unavailable
from bucketvault.providers.aws.credentials import AwsCredentials

log = logging.getLogger(__name__)

# A URL expires at least this long before the session that signed it.
SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class RefreshWindows:
    """How long before expiry to refresh in the background / to block."""

    advisory: timedelta = timedelta(minutes=100)
    mandatory: timedelta = timedelta(minutes=70)
    # After a failed refresh, how long usable sessions serve before STS is tried again.
    retry_after: timedelta = timedelta(seconds=30)

    def for_lifetime(self, lifetime: timedelta) -> RefreshWindows:
        """Windows scaled down for short sessions (never more than half / a quarter)."""
        return RefreshWindows(
            advisory=min(self.advisory, lifetime / 2),
            mandatory=min(self.mandatory, lifetime / 4),
            retry_after=self.retry_after,
        )


class Freshness(enum.Enum):
    FRESH = "fresh"
    ADVISORY = "advisory"
    MANDATORY = "mandatory"


@dataclass(frozen=True)
class _Session:
    credentials: AwsCredentials
    windows: RefreshWindows

    def freshness(self, now: datetime) -> Freshness:
        expiration = self.credentials.expiration
        if expiration is None:
            return Freshness.FRESH
        left = expiration - now
        if left <= self.windows.mandatory:
            return Freshness.MANDATORY
        if left <= self.windows.advisory:
            return Freshness.ADVISORY
        return Freshness.FRESH

    def usable(self, now: datetime) -> bool:
        expiration = self.credentials.expiration
        return expiration is None or expiration - SKEW > now


def _start_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="bucketvault-aws-refresh", daemon=True).start()


class SessionCache:
    """Thread-safe cache of one credential's session; see the module docstring."""

    def __init__(
        self,
        fetch: Callable[[], AwsCredentials],
        clock: Clock,
        windows: RefreshWindows | None = None,
        spawn: Callable[[Callable[[], None]], None] = _start_thread,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._windows = windows or RefreshWindows()
        self._spawn = spawn
        self._lock = threading.Lock()
        # Held for the whole of an STS call: that is what makes refreshes single-flight.
        self._refresh_lock = threading.Lock()
        self._session: _Session | None = None
        self._background = False
        self._quiet_until: datetime | None = None
        self._last_error: BucketVaultError | None = None
        self._closed = False

    def get(self) -> AwsCredentials:
        """A session to sign with: cached, refreshed in the background, or fetched now."""
        now = self._clock.now()
        with self._lock:
            if self._closed:
                raise Unavailable("the credential was closed", reason="CREDENTIAL_CLOSED")
            session = self._session
            if session is not None:
                state = session.freshness(now)
                if state is Freshness.FRESH:
                    return session.credentials
                if state is Freshness.ADVISORY:
                    if not self._background:
                        self._background = True
                        self._spawn(self._refresh_in_background)
                    return session.credentials
        return self._refresh_now()

    def _refresh_in_background(self) -> None:
        try:
            self._refresh_now(background=True)
        except BucketVaultError as exc:
            log.warning("background session refresh failed: %s", exc.reason)
        finally:
            with self._lock:
                self._background = False

    def _refresh_now(self, *, background: bool = False) -> AwsCredentials:
        with self._refresh_lock:
            now = self._clock.now()
            with self._lock:
                session = self._session
                quiet = self._quiet_until is not None and now < self._quiet_until
            wanted = Freshness.ADVISORY if background else Freshness.MANDATORY
            # Another caller refreshed while we waited for the lock: done.
            if session is not None and _rank(session.freshness(now)) < _rank(wanted):
                return session.credentials
            if quiet:
                return self._fallback(session, now)
            try:
                credentials = self._fetch()
            except BucketVaultError as exc:
                with self._lock:
                    self._quiet_until = now + self._windows.retry_after
                    self._last_error = exc
                log.warning("session refresh failed: %s", exc.reason)
                return self._fallback(session, now)
            windows = self._windows
            if credentials.expiration is not None:
                windows = windows.for_lifetime(credentials.expiration - now)
            with self._lock:
                if not self._closed:
                    self._session = _Session(credentials, windows)
                self._quiet_until = None
                self._last_error = None
            return credentials

    def _fallback(self, session: _Session | None, now: datetime) -> AwsCredentials:
        # STS is failing: a session that is still valid keeps serving.
        if session is not None and session.usable(now):
            return session.credentials
        error = self._last_error
        if error is not None:
            raise error
        raise Unavailable("no AWS session is available", reason="STS_UNAVAILABLE")

    def close(self) -> None:
        """Forget the session; later calls fail."""
        with self._lock:
            self._closed = True
            self._session = None


def _rank(state: Freshness) -> int:
    return {Freshness.FRESH: 0, Freshness.ADVISORY: 1, Freshness.MANDATORY: 2}[state]


__all__ = ["SKEW", "Freshness", "RefreshWindows", "SessionCache"]
