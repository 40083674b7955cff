"""The Metrics seam: what the service counts, named by what happened, not by how it is
exported. Label values are fixed strings (methods, status codes, cloud families, cache
names), never tenant-supplied text or secrets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Metrics(Protocol):
    def rpc(self, method: str, code: str, seconds: float) -> None:
        """One RPC finished with a status code (its whole stream, for streaming RPCs)."""
        ...

    def urls_signed(self, family: str, count: int) -> None:
        """count URLs were signed with a credential of a cloud family."""
        ...

    def cache(self, cache: str, result: str) -> None:
        """A refresh-ahead cache answered: "hit" (cached value) or "miss" (caller waited)."""
        ...

    def refresh(self, cache: str, mode: str, outcome: str, seconds: float) -> None:
        """One fetch behind a cache (an outbound cloud call): background or blocking."""
        ...

    def expiry(self, holder: object, cache: str, expires_at: float | None) -> None:
        """holder now holds a value expiring at this Unix time (None: forget holder)."""
        ...

    def credential_expiry(self, holder: object, family: str, expires_at: float | None) -> None:
        """A credential in use that itself expires (a customer SAS) does so at this Unix
        time (None: forget holder)."""
        ...

    def kms(self, operation: str, backend: str, outcome: str, seconds: float) -> None:
        """One KEK wrap or unwrap."""
        ...

    def audit_commit(self, seconds: float, rows: int, ok: bool) -> None:
        """One audit group commit."""
        ...

    def url_cache(self, lookups: Callable[[], tuple[int, int]]) -> None:
        """The stable-URL cache's (hits, misses) so far, read when metrics are collected."""
        ...

    def audit_queue(self, depth: Callable[[], int]) -> None:
        """Read depth() at every scrape: records waiting for the audit writer."""
        ...

    def drain(self, in_flight: Callable[[], int]) -> None:
        """Read in_flight() at every scrape: RPCs being served."""
        ...

    def link_open(self, mode: str, outcome: str) -> None:
        """One link open answered: mode "token" or "network", outcome "redirected",
        "not_found", "revoked", "expired", "rate_limited", "forbidden", ..."""
        ...


class NoMetrics:
    """Metrics off: every call costs one attribute lookup and returns."""

    def rpc(self, method: str, code: str, seconds: float) -> None:
        """Nothing."""

    def urls_signed(self, family: str, count: int) -> None:
        """Nothing."""

    def cache(self, cache: str, result: str) -> None:
        """Nothing."""

    def refresh(self, cache: str, mode: str, outcome: str, seconds: float) -> None:
        """Nothing."""

    def expiry(self, holder: object, cache: str, expires_at: float | None) -> None:
        """Nothing."""

    def credential_expiry(self, holder: object, family: str, expires_at: float | None) -> None:
        """Nothing."""

    def kms(self, operation: str, backend: str, outcome: str, seconds: float) -> None:
        """Nothing."""

    def audit_commit(self, seconds: float, rows: int, ok: bool) -> None:
        """Nothing."""

    def url_cache(self, lookups: Callable[[], tuple[int, int]]) -> None:
        """Nothing."""

    def audit_queue(self, depth: Callable[[], int]) -> None:
        """Nothing."""

    def drain(self, in_flight: Callable[[], int]) -> None:
        """Nothing."""

    def link_open(self, mode: str, outcome: str) -> None:
        """Nothing."""


NO_METRICS = NoMetrics()

__all__ = ["NO_METRICS", "Metrics", "NoMetrics"]
