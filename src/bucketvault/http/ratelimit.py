"""A token bucket per client (an address, a principal): `rate` opens a second, bursts up to
`burst`."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

# Clients tracked at once; the least recently seen is forgotten first (it starts full
# again, which errs towards serving: a limit is a brake, not an access control).
MAX_CLIENTS = 65536


class TokenBuckets:
    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._max = max_clients
        self._lock = threading.Lock()
        # client -> (tokens, when they were counted)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> bool:
        """Spend one token of client's bucket; False when it is empty."""
        return self.wait(client) == 0.0

    def wait(self, client: str, rate: float | None = None, burst: int | None = None) -> float:
        """Spend one token of client's bucket (0.0), or the seconds until one is there.

        rate and burst, when given, replace the buckets' own for this client (per-client
        limits, e.g. from a policy entry); pass the same ones every time."""
        rate = self._rate if rate is None else rate
        full = self._burst if burst is None else float(burst)
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.pop(client, (full, now))
            tokens = min(full, tokens + (now - then) * rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / rate
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
            return wait


__all__ = ["MAX_CLIENTS", "TokenBuckets"]
