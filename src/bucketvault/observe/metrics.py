"""The Metrics seam: what the service counts, named by what happened, not by how it is
exported. Label values are fixed strings (methods, status codes, cloud families, cache
names), never tenant-supplied text or secrets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Metrics(Protocol):
    # Each method does nothing here, so that NoMetrics is this protocol itself rather
    # than a second copy of every signature; a real backend implements them all.
    def rpc(self, method: str, code: str, seconds: float) -> None:
        """One RPC finished with a status code (its whole stream, for streaming RPCs)."""
        return None

    def urls_signed(self, family: str, count: int) -> None:
        """count URLs were signed with a credential of a cloud family."""
        return None

    def cache(self, cache: str, result: str) -> None:
        """A refresh-ahead cache answered: "hit" (cached value) or "miss" (caller waited)."""
        return None

    def refresh(self, cache: str, mode: str, outcome: str, seconds: float) -> None:
        """One fetch behind a cache (an outbound cloud call): background or blocking."""
        return None

    def expiry(self, holder: object, cache: str, expires_at: float | None) -> None:
        """holder now holds a value expiring at this Unix time (None: forget holder)."""
        return None

    def credential_expiry(self, holder: object, family: str, expires_at: float | None) -> None:
        """A credential in use that itself expires (a customer SAS) does so at this Unix
        time (None: forget holder)."""
        return None

    def kms(self, operation: str, backend: str, outcome: str, seconds: float) -> None:
        """One KEK wrap or unwrap."""
        return None

    def audit_commit(self, seconds: float, rows: int, ok: bool) -> None:
        """One audit group commit."""
        return None

    def url_cache(self, lookups: Callable[[], tuple[int, int]]) -> None:
        """The stable-URL cache's (hits, misses) so far, read when metrics are collected."""
        return None

    def audit_queue(self, depth: Callable[[], int]) -> None:
        """Read depth() at every scrape: records waiting for the audit writer."""
        return None

    def drain(self, in_flight: Callable[[], int]) -> None:
        """Read in_flight() at every scrape: RPCs being served."""
        return None

    def link_open(self, mode: str, outcome: str) -> None:
        """One link open answered: mode "token" or "network", outcome "redirected",
        "not_found", "revoked", "expired", "rate_limited", "forbidden", ..."""
        return None


class NoMetrics(Metrics):
    """Metrics off: every method is the protocol's own, which returns at once."""


NO_METRICS = NoMetrics()

__all__ = ["NO_METRICS", "Metrics", "NoMetrics"]
