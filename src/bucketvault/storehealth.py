"""Health follows the store: NOT_SERVING while it cannot be read, SERVING again once it can.

A replica whose database is gone can answer nothing but UNAVAILABLE; saying so in
grpc.health lets a load balancer send the traffic to a replica that can. The probe is a
cheap read; it runs from the service's periodic jobs, never on a request's path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

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


__all__ = ["PROBE_SECONDS", "StoreHealth"]
