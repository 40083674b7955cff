"""A KeyProvider that reports each KEK call (KMS, or the local file) to the seams."""

from __future__ import annotations

import time

from bucketvault.crypto.keys.base import KeyProvider
from bucketvault.observe.metrics import Metrics
from bucketvault.observe.tracing import Tracer


def kek_backend(uri: str) -> str:
    """The label of a KEK URI: its scheme only (the key id may name an account)."""
    return uri.split("://", 1)[0] if "://" in uri else "unknown"


class ObservedKeyProvider:
    """Times, counts and traces wrap and unwrap; the key material never passes here."""

    def __init__(self, inner: KeyProvider, backend: str, metrics: Metrics, tracer: Tracer) -> None:
        self._inner = inner
        self._backend = backend
        self._metrics = metrics
        self._tracer = tracer
        self.kek_id = inner.kek_id

    def __repr__(self) -> str:
        return f"ObservedKeyProvider({self._inner!r})"

    def _call(self, operation: str, data: bytes, associated_data: bytes) -> bytes:
        start = time.perf_counter()
        outcome = "error"
        with self._tracer.span(
            f"kek.{operation}", attributes={"bucketvault.kek_backend": self._backend}
        ) as span:
            try:
                fn = self._inner.wrap if operation == "wrap" else self._inner.unwrap
                out = fn(data, associated_data)
                outcome = "ok"
                return out
            except Exception:
                span.fail("error")
                raise
            finally:
                seconds = time.perf_counter() - start
                self._metrics.kms(operation, self._backend, outcome, seconds)

    def wrap(self, dek: bytes, associated_data: bytes) -> bytes:
        """The inner provider's wrap, observed."""
        return self._call("wrap", dek, associated_data)

    def unwrap(self, wrapped: bytes, associated_data: bytes) -> bytes:
        """The inner provider's unwrap, observed."""
        return self._call("unwrap", wrapped, associated_data)


__all__ = ["ObservedKeyProvider", "kek_backend"]
