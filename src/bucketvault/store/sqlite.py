"""SQLite dialect: the embedded default store, one file in WAL mode.

One connection per thread (WAL lets readers run alongside the single writer, and the
hot path is two point reads per SignURL). Writes take ``BEGIN IMMEDIATE`` so that two
writers queue on the busy timeout instead of deadlocking on a lock upgrade.

``synchronous`` is FULL by default: every commit (one per audit group commit) fsyncs
the WAL, so a committed record survives a power loss. NORMAL (``?synchronous=normal`` on
the store URL) fsyncs only at checkpoints: a commit still survives the process crashing,
but the last commits before a power loss or kernel crash may be lost, and an audit
record the caller was answered for may be among them.

A connection that hit a read-only, I/O or cannot-open error is reopened on its thread's
next use: SQLite opens a file it cannot write read-only and keeps it so, and a
connection opened while the file was read-only (chmod, ``chattr +i``, a remount) would
otherwise refuse every write until a restart.

A revoke's shred checkpoints the WAL with TRUNCATE, which needs the write lock and every
reader off the WAL at one moment. Under steady load this process's own writers (audit
group commits back to back) win that lock on every busy-handler poll, so the checkpoint
starved for the whole busy timeout and the revoke failed SHRED_INCOMPLETE every time.
Every statement therefore passes a gate that the shred takes alone: new statements wait
(the checkpoint takes milliseconds), the ones running finish, and the checkpoint runs
with no competitor from this process. Another process (a CLI, a backup) can still hold
it up: that stays SHRED_INCOMPLETE, retryable, the credential already revoked.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from bucketvault.errors import Internal, InvalidArgument, Unavailable
from bucketvault.store._connections import Connections
from bucketvault.store.migrations import apply_migrations
from bucketvault.store.sql import Fault, SqlStore, fault_error

# Extended error names (prefixes) after which a connection is not used again.
_REOPEN_AFTER = ("SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN")


def _require_wal(conn: sqlite3.Connection) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise Internal("SQLite refused WAL mode", reason="STORE_NO_WAL")


SYNCHRONOUS_MODES = ("FULL", "NORMAL")


def synchronous_mode(value: str) -> str:
    """FULL (fsync every commit, the default) or NORMAL (fsync at checkpoints)."""
    mode = value.strip().upper()
    if mode not in SYNCHRONOUS_MODES:
        raise InvalidArgument(
            "the SQLite synchronous setting must be full or normal", reason="INVALID_STORE_URL"
        )
    return mode


def _create_private_file(path: str) -> None:
    """Create the database file 0600 before SQLite does (it would honour the umask)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class _Gate:
    """Statements share it; a shred holds it alone. Waiting shred first: once one waits,
    new statements queue behind it, so a steady stream of them cannot starve it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = 0
        self._alone = False
        self._waiting = 0
        # Depth per thread: a statement inside this thread's transaction is already in.
        self._local = threading.local()

    @contextmanager
    def shared(self) -> Iterator[None]:
        depth: int = getattr(self._local, "depth", 0)
        if not depth:
            with self._cond:
                while self._alone or self._waiting:
                    self._cond.wait()
                self._running += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if not depth:
                with self._cond:
                    self._running -= 1
                    if not self._running:
                        self._cond.notify_all()

    @contextmanager
    def alone(self, timeout: float) -> Iterator[bool]:
        """Yields True once no statement runs (new ones wait), False after timeout."""
        if getattr(self._local, "depth", 0):
            raise RuntimeError("a shred cannot run inside a store statement")
        deadline = time.monotonic() + timeout
        got = False
        with self._cond:
            self._waiting += 1
            try:
                while self._alone or self._running:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                got = not (self._alone or self._running)
                if got:
                    self._alone = True
            finally:
                self._waiting -= 1
                if not got:
                    self._cond.notify_all()
        try:
            yield got
        finally:
            if got:
                with self._cond:
                    self._alone = False
                    self._cond.notify_all()


class SqliteDialect:
    """Per-thread connections to one SQLite file; timestamps as fixed-width UTC text."""

    driver_error: type[Exception] = sqlite3.Error
    no_limit: int | None = -1

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_ms: int = 5000,
        synchronous: str = "FULL",
    ) -> None:
        self._path = os.fspath(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous = synchronous_mode(synchronous)
        self._local = threading.local()
        self._open: Connections[sqlite3.Connection] = Connections()
        self._gate = _Gate()
        _create_private_file(self._path)

    def _conn(self) -> sqlite3.Connection:
        if self._open.closed:
            raise fault_error(Fault.CLOSED)
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "stale", False):
            self._local.conn = None
            self._open.discard(conn)
            conn = None
        self._local.stale = False
        if conn is not None:
            return conn
        # check_same_thread=False only so close() may close every thread's connection;
        # each connection is otherwise used by the thread that opened it.
        conn = sqlite3.connect(
            self._path,
            timeout=self._busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys = ON")
            # Freed space is zeroed, so a shredded envelope leaves no bytes in the file.
            conn.execute("PRAGMA secure_delete = ON")
            _require_wal(conn)
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            if not self._open.keep(conn):
                raise fault_error(Fault.CLOSED)
        except BaseException:
            conn.close()
            raise
        self._local.conn = conn
        return conn

    def migrate(self) -> None:
        """Apply pending migrations under BEGIN IMMEDIATE."""
        with self._gate.shared():
            apply_migrations(self._conn(), "sqlite")

    def fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """One read statement on this thread's connection, outside any transaction."""
        with self._gate.shared():
            return self._conn().execute(sql, params).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: take the write lock up front (or wait the busy timeout)."""
        with self._gate.shared():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def encode_time(self, utc: datetime) -> str:
        """Fixed-width UTC text, so that text order is time order."""
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def decode_time(self, value: str) -> datetime:
        return datetime.fromisoformat(value).astimezone(UTC)

    def fault(self, exc: Exception) -> Fault:
        """SQLite's extended error name, else its exception class. Messages name columns,
        never values.

        Called on the thread whose connection raised exc: a read-only, I/O or cannot-open
        error marks that connection stale, and the thread's next use opens a new one."""
        name = getattr(exc, "sqlite_errorname", "")
        if name.startswith(_REOPEN_AFTER):
            self._local.stale = True
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return Fault.BUSY
        if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
            return Fault.FOREIGN_KEY
        if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
            # "UNIQUE constraint failed: mounts.tenant, mounts.name"
            return Fault.UNIQUE_MOUNT_NAME if "mounts.name" in str(exc) else Fault.UNIQUE
        if isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc):
            return Fault.CLOSED
        if isinstance(exc, sqlite3.OperationalError):
            return Fault.UNAVAILABLE
        return Fault.ERROR

    def purge_freed(self) -> None:
        """Copy the WAL into the file and truncate it: the old envelope pages go with it.

        Run alone in this process (see the module header); the wait for running
        statements to finish is bounded by the busy timeout, like the checkpoint's own."""
        with self._gate.alone(self._busy_timeout_ms / 1000) as alone:
            busy = 1
            if alone:
                busy, _, _ = self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise Unavailable(
                "credential revoked, but old copies are not purged yet; retry the revoke",
                reason="SHRED_INCOMPLETE",
            )

    def close(self) -> None:
        """Close every thread's connection."""
        self._open.close()


class SqliteStore(SqlStore):
    """The Store protocol on one SQLite file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_ms: int = 5000,
        synchronous: str = "FULL",
    ) -> None:
        super().__init__(
            SqliteDialect(path, busy_timeout_ms=busy_timeout_ms, synchronous=synchronous)
        )


__all__ = ["SYNCHRONOUS_MODES", "SqliteDialect", "SqliteStore", "synchronous_mode"]
