"""The "limits" of a policy entry: overrides of the server's per-principal call limits.

Limits (JSON)::

    {"rps": 50, "burst": 100, "concurrency": 8}

Every key is optional; an omitted one takes the server's default (BUCKETVAULT_LIMIT_RPS,
BUCKETVAULT_LIMIT_BURST, BUCKETVAULT_LIMIT_CONCURRENCY) and 0 means no limit of that kind
for this principal. An unknown key rejects the file ("rate" read as no limit would lift
a limit nobody meant to lift).
"""

from __future__ import annotations

from collections.abc import Mapping

from bucketvault.errors import InvalidArgument
from bucketvault.models import Limits

LIMIT_KEYS = frozenset({"rps", "burst", "concurrency"})
MAX_RPS = 1_000_000
MAX_BURST = 1_000_000
MAX_CONCURRENCY = 10_000


def _bad(where: str, problem: str) -> InvalidArgument:
    return InvalidArgument(f"{where} {problem}", reason="INVALID_POLICY")


def _int(doc: Mapping[str, object], key: str, hi: int, where: str) -> int | None:
    if key not in doc:
        return None
    value = doc[key]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= hi:
        raise _bad(f"{where}.{key}", f"must be an integer in 0..{hi} (0: no limit)")
    return value


def parse_limits(doc: object, where: str) -> Limits:
    """An entry's limits, or INVALID_POLICY naming the offending place."""
    if not isinstance(doc, Mapping):
        raise _bad(where, "must be an object")
    unknown = set(doc) - LIMIT_KEYS
    if unknown:
        raise _bad(where, f"has unknown keys {sorted(unknown)}")
    rps: float | None = None
    if "rps" in doc:
        value = doc["rps"]
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not 0 <= value <= MAX_RPS
        ):
            raise _bad(f"{where}.rps", f"must be a number in 0..{MAX_RPS} (0: no limit)")
        rps = float(value)
    burst = _int(doc, "burst", MAX_BURST, where)
    if burst == 0:
        raise _bad(f"{where}.burst", "must be at least 1 (set rps to 0 for no rate limit)")
    return Limits(rps, burst, _int(doc, "concurrency", MAX_CONCURRENCY, where))


__all__ = ["LIMIT_KEYS", "parse_limits"]
