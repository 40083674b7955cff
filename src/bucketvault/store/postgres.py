"""PostgreSQL dialect: the store shared by several replicas (psycopg 3).

Connections come from a small thread-safe pool; a write is one transaction on one of
them, a single read runs in autocommit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

from bucketvault.errors import Unavailable
from bucketvault.store._connections import Connections
from bucketvault.store.migrations import apply_migrations
from bucketvault.store.sql import Fault, SqlStore

_Conn = psycopg.Connection[TupleRow]
_Cursor = psycopg.Cursor[TupleRow]


@lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    """The store's ``?`` placeholders as psycopg's ``%s`` (the store's statements hold
    no other ``?`` or ``%``); cached, since the statements are a small fixed set."""
    return sql.replace("?", "%s")


class _Session:
    """A psycopg cursor that takes the store's ``?`` placeholders."""

    def __init__(self, cur: _Cursor) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Sequence[Any], /) -> _Cursor:
        return self._cur.execute(_pyformat(sql), params)

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> None:
        self._cur.executemany(_pyformat(sql), params)


class _Pool:
    """A few long-lived autocommit connections, handed to one thread at a time."""

    def __init__(self, conninfo: str, size: int, acquire_timeout: float) -> None:
        self._conninfo = conninfo
        self._acquire_timeout = acquire_timeout
        self._slots = threading.BoundedSemaphore(size)
        self._idle: Connections[_Conn] = Connections()

    def _connect(self) -> _Conn:
        conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10)
        # Returned datetimes then carry UTC, like every datetime the store hands out.
        conn.execute("SET TIME ZONE 'UTC'")
        return conn

    @contextmanager
    def connection(self) -> Iterator[_Conn]:
        if not self._slots.acquire(timeout=self._acquire_timeout):
            raise Unavailable("no store connection free; retry", reason="STORE_POOL_EXHAUSTED")
        conn: _Conn | None = None
        try:
            conn = self._idle.take()
            if conn is None or conn.closed:
                conn = self._connect()
            yield conn
        finally:
            self._give_back(conn)
            self._slots.release()

    def _give_back(self, conn: _Conn | None) -> None:
        if conn is None:
            return
        healthy = not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE
        if not (healthy and self._idle.keep(conn)):
            conn.close()

    def close(self) -> None:
        self._idle.close()


class PostgresDialect:
    """A pool of connections to one PostgreSQL database; timestamps as timestamptz."""

    driver_error: type[Exception] = psycopg.Error
    no_limit: int | None = None

    def __init__(self, conninfo: str, *, pool_size: int = 8, acquire_timeout: float = 10.0) -> None:
        self._pool = _Pool(conninfo, pool_size, acquire_timeout)

    def migrate(self) -> None:
        """Apply pending migrations under an advisory lock, so racing replicas apply each once."""
        with self._pool.connection() as conn:
            apply_migrations(conn, "postgres")

    def fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """One read statement in autocommit: the statement is its own transaction, and
        skipping BEGIN/COMMIT saves two round trips on the SignURL hot path."""
        with self._pool.connection() as conn:
            return conn.execute(_pyformat(sql), params).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[_Session]:
        """A READ COMMITTED transaction on a pooled connection."""
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield _Session(cur)

    def encode_time(self, utc: datetime) -> datetime:
        return utc

    def decode_time(self, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def fault(self, exc: Exception) -> Fault:
        """By SQLSTATE class. Only the fault travels on: PostgreSQL error details can quote
        a whole failing row (envelope bytes included)."""
        if isinstance(exc, pgerrors.ForeignKeyViolation):
            return Fault.FOREIGN_KEY
        if isinstance(exc, pgerrors.UniqueViolation):
            if exc.diag.constraint_name == "mounts_tenant_name_key":
                return Fault.UNIQUE_MOUNT_NAME
            return Fault.UNIQUE
        if isinstance(exc, pgerrors.TransactionRollback):
            return Fault.CONFLICT
        if isinstance(exc, pgerrors.LockNotAvailable | pgerrors.QueryCanceled):
            return Fault.BUSY
        if isinstance(exc, psycopg.OperationalError):
            return Fault.UNAVAILABLE
        return Fault.ERROR

    def purge_freed(self) -> None:
        """Nothing to do here: PostgreSQL keeps the old row version until VACUUM reclaims
        it, and what is left there is ciphertext under the KEK, like any backup."""

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()


class PostgresStore(SqlStore):
    """The Store protocol on a PostgreSQL database."""

    def __init__(self, conninfo: str, *, pool_size: int = 8, acquire_timeout: float = 10.0) -> None:
        super().__init__(
            PostgresDialect(conninfo, pool_size=pool_size, acquire_timeout=acquire_timeout)
        )


__all__ = ["PostgresDialect", "PostgresStore"]
