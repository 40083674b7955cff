"""Reloading the policy file while serving: on change (polled) and on demand (SIGHUP).

A new file is parsed whole before it is swapped in; a bad one is rejected whole, logged
at ERROR with its reason (never its content: it holds token hashes), and the policy
already serving stays. The file is polled by its (mtime, size, inode): an atomic
replace (``bucketvault token create``) changes the inode even within one mtime tick.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from bucketvault.auth.authn import TokenAuthenticator, load_policy_file
from bucketvault.errors import BucketVaultError

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0

_Stamp = tuple[int, int, int] | None


def _stamp(path: Path) -> _Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class PolicyWatcher:
    """Keeps an authenticator's policy in step with its file, until ``stop()``."""

    def __init__(
        self,
        path: Path,
        authenticator: TokenAuthenticator,
        *,
        interval: float = POLL_SECONDS,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self._path = path
        self._authn = authenticator
        self._interval = interval
        self._stop = threading.Event()
        # Tests inject the wait to step the poll loop; by default it is the stop event's.
        self._wait = wait or self._stop.wait
        self._lock = threading.Lock()
        # The file the serving policy (or the last rejected one) was read from.
        self._seen = _stamp(path)
        self._thread: threading.Thread | None = None

    @classmethod
    def open(cls, path: Path, *, interval: float = POLL_SECONDS) -> PolicyWatcher:
        """An authenticator serving the file's policy, and its (unstarted) watcher.

        The file is stamped before it is read: a change in between is seen by the first
        poll instead of being missed. A bad file here raises (start-up fails fast).
        """
        stamp = _stamp(path)
        watcher = cls(path, TokenAuthenticator(load_policy_file(path)), interval=interval)
        watcher._seen = stamp
        return watcher

    @property
    def authenticator(self) -> TokenAuthenticator:
        """The authenticator whose policy this watcher replaces."""
        return self._authn

    def reload(self) -> bool:
        """Read the file now (SIGHUP); True when the new policy is serving."""
        with self._lock:
            self._seen = _stamp(self._path)
            try:
                policy = load_policy_file(self._path)
            except BucketVaultError as exc:
                # The message names a place in the file, never a value from it.
                log.error(
                    "policy file %s rejected, keeping the policy in force: %s [%s]",
                    self._path,
                    exc.message,
                    exc.reason,
                )
                return False
            except Exception as exc:  # a parser gap must not stop the watcher or serve half
                log.error(
                    "policy file %s rejected, keeping the policy in force: %s [INVALID_POLICY]",
                    self._path,
                    type(exc).__name__,
                )
                return False
            self._authn.replace(policy)
        log.info("policy file %s loaded: %d principals", self._path, len(policy.principals))
        return True

    def poll(self) -> bool | None:
        """Reload if the file changed since last read; None when it did not."""
        if _stamp(self._path) == self._seen:
            return None
        return self.reload()

    def _run(self) -> None:
        while not self._wait(self._interval):
            if self._stop.is_set():
                return
            try:
                self.poll()
            except Exception:  # the watcher must outlive any one bad read
                log.exception("policy poll failed")

    def start(self) -> PolicyWatcher:
        """Poll from a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="policy-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


__all__ = ["POLL_SECONDS", "PolicyWatcher"]
