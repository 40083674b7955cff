"""Open connections that one close() closes together, for either dialect.

SQLite keeps every thread's connection here (close() must reach them all); the
PostgreSQL pool keeps its idle ones.
"""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar

from bucketvault.store.sql import Fault, fault_error


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


class Connections(Generic[C]):
    """Connections kept under a lock; after close() none is kept or handed out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: list[C] = []
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def keep(self, conn: C) -> bool:
        """Keep conn until close(); False if closed already (conn is then the caller's)."""
        with self._lock:
            if self._closed:
                return False
            self._kept.append(conn)
            return True

    def take(self) -> C | None:
        """Hand out the newest kept connection, None if none is kept; Unavailable once closed."""
        with self._lock:
            if self._closed:
                raise fault_error(Fault.CLOSED)
            return self._kept.pop() if self._kept else None

    def discard(self, conn: C) -> None:
        """Forget conn (kept or not) and close it: it is broken, never to be handed out."""
        with self._lock:
            self._kept = [c for c in self._kept if c is not conn]
        conn.close()

    def close(self) -> None:
        """Close every kept connection; later keep() and take() refuse."""
        with self._lock:
            self._closed = True
            kept, self._kept = self._kept, []
        for conn in kept:
            conn.close()


__all__ = ["Connections"]
