"""Health follows the store: NOT_SERVING while it cannot be read, SERVING again once it can.

A replica whose database is gone can answer nothing but UNAVAILABLE; saying so in
grpc.health lets a load balancer send the traffic to a replica that can. The probe is a
cheap read; it runs from the service's periodic jobs, never on a request's path.

A cloud dependency (STS) is reported under its own health name instead
(``bucketvault.dependency.sts``): every replica shares it, so taking a replica out of
rotation helps no one, and mounts on other clouds (and warm AWS sessions) still sign.
Its status comes from the calls themselves, not from a probe: a probe would spend
AssumeRole quota and still say nothing about the next call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)

# How often the store is probed: an outage shows in health within about this long.
PROBE_SECONDS = 5.0


@dataclass
class StoreHealth:
    """Flips the reported health when the store's reachability changes (and only then)."""

    probe: Callable[[], object]
    # Told True (serving) or False (not serving) on each change.
    report: Callable[[bool], None]
    serving: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self) -> bool:
        """Probe once; report a change. True when the store answered."""
        try:
            self.probe()
            ok = True
        except Exception as exc:  # any store fault means "cannot serve", whatever its type
            ok = False
            failure = type(exc).__name__
        with self._lock:
            changed, self.serving = ok != self.serving, ok
        if changed:
            if ok:
                log.info("store reachable again: health SERVING")
            else:
                log.warning("store unreachable (%s): health NOT_SERVING", failure)
            self.report(ok)
        return ok


# The health name prefix of a dependency's component (its name follows).
DEPENDENCY_PREFIX = "bucketvault.dependency."


class DependencyHealth:
    """Whether a dependency answered its last call: None until the first call, then True
    after an answer (any, a refusal included), False after an outage. A watcher is told
    each change (and the current state when it starts watching)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._up: bool | None = None
        self._watchers: list[Callable[[bool | None], None]] = []

    @property
    def health_name(self) -> str:
        return DEPENDENCY_PREFIX + self.name

    @property
    def up(self) -> bool | None:
        return self._up

    def watch(self, watcher: Callable[[bool | None], None]) -> None:
        with self._lock:
            self._watchers.append(watcher)
            now = self._up
        watcher(now)

    def answered(self) -> None:
        self._set(True)

    def failed(self, reason: str) -> None:
        if self._set(False):
            log.warning(
                "%s unreachable (%s): health %s NOT_SERVING", self.name, reason, self.health_name
            )

    def _set(self, up: bool) -> bool:
        with self._lock:
            if self._up is up:
                return False
            was, self._up = self._up, up
            watchers = list(self._watchers)
        if up and was is False:
            log.info("%s answers again: health %s SERVING", self.name, self.health_name)
        for watcher in watchers:
            watcher(up)
        return True


@runtime_checkable
class HasDependencies(Protocol):
    """A provider whose calls depend on a remote service it reports the health of."""

    def dependencies(self) -> Sequence[DependencyHealth]: ...


__all__ = [
    "DEPENDENCY_PREFIX",
    "PROBE_SECONDS",
    "DependencyHealth",
    "HasDependencies",
    "StoreHealth",
]
