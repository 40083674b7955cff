"""Per-principal call limits: a token bucket (calls a second, with a burst) and a cap on
calls in flight, so that one noisy caller cannot take every worker from the others.

The interceptor asks ``CallLimiter.admit`` once per call, after authentication (the
limits are the principal's). A refusal is RESOURCE_EXHAUSTED, reason RATE_LIMITED or
TOO_MANY_CONCURRENT_CALLS, with google.rpc.RetryInfo; it fails the call like any other
error, so it is audited. A batch (SignURLs, CreateLinks) is one call: its size is
bounded by the batch limit, and its cost is what the concurrency cap is for. A stream
(ListPrefix) holds its slot until its last reply.

Defaults come from config.CallLimits (BUCKETVAULT_LIMIT_*), a policy entry's "limits"
override them (auth/limits.py); 0 means no limit of that kind.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from bucketvault.config import CallLimits
from bucketvault.errors import ResourceExhausted
from bucketvault.http.ratelimit import TokenBuckets
from bucketvault.models import Principal

# What a caller refused for concurrency is told to wait: a slot frees when a call ends,
# which the server cannot foresee; long enough not to spin, short next to a call.
CONCURRENCY_RETRY_SECONDS = 0.1


class CallLimiter:
    def __init__(
        self, defaults: CallLimits, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._defaults = defaults
        # Rate and burst are passed per principal; the buckets' own are never used.
        self._buckets = TokenBuckets(1.0, 1, clock=clock)
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}

    def limits_for(self, principal: Principal) -> tuple[float, int, int]:
        """(rps, burst, concurrency) that apply to principal; 0 = no limit.

        An entry that sets rps but not burst bursts one second's worth of its own rate."""
        own, defaults = principal.limits, self._defaults
        rps = defaults.rps if own.rps is None else own.rps
        if own.burst is not None:
            burst = own.burst
        elif own.rps is None:
            burst = defaults.burst
        else:
            burst = max(1, math.ceil(rps))
        concurrency = defaults.concurrency if own.concurrency is None else own.concurrency
        return rps, max(1, burst), concurrency

    def in_flight(self, name: str) -> int:
        """Calls of the principal named name being served now (counted when it is capped)."""
        return self._in_flight.get(name, 0)

    def admit(self, principal: Principal) -> AbstractContextManager[None]:
        """Around the body of one call: ResourceExhausted when a limit is hit."""
        rps, burst, concurrency = self.limits_for(principal)
        if not rps and not concurrency:
            return nullcontext()  # unlimited: nothing to count
        return self._admitted(principal.name, rps, burst, concurrency)

    @contextmanager
    def _admitted(self, name: str, rps: float, burst: int, concurrency: int) -> Iterator[None]:
        if concurrency:
            with self._lock:
                running = self._in_flight.get(name, 0)
                if running >= concurrency:
                    raise ResourceExhausted(
                        f"{name} has {concurrency} calls in flight, its limit: retry later",
                        reason="TOO_MANY_CONCURRENT_CALLS",
                        metadata={"concurrency": str(concurrency)},
                        retry_after=CONCURRENCY_RETRY_SECONDS,
                    )
                self._in_flight[name] = running + 1
        try:
            if rps:
                wait = self._buckets.wait(name, rps, burst)
                if wait:
                    raise ResourceExhausted(
                        f"{name} exceeds its rate of {rps:g} calls/s: retry later",
                        reason="RATE_LIMITED",
                        metadata={"rps": f"{rps:g}", "burst": str(burst)},
                        retry_after=wait,
                    )
            yield
        finally:
            if concurrency:
                with self._lock:
                    left = self._in_flight[name] - 1
                    if left:
                        self._in_flight[name] = left
                    else:
                        del self._in_flight[name]


__all__ = ["CONCURRENCY_RETRY_SECONDS", "CallLimiter"]
