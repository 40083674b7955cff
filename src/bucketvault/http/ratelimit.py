"""A token bucket per client address: `rate` opens a second, bursts up to `burst`."""

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
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.pop(client, (self._burst, now))
            tokens = min(self._burst, tokens + (now - then) * self._rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
            return allowed


__all__ = ["MAX_CLIENTS", "TokenBuckets"]
