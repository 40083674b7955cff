"""Schema migrations: numbered ``NNNN_name.sql`` files applied in order, once each.

Both backends share this runner. Each file is applied in its own transaction together
with its row in ``schema_migrations``, under a lock (SQLite ``BEGIN IMMEDIATE``,
PostgreSQL advisory lock) so that replicas starting at once apply a file exactly once.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgres"]

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Arbitrary constant naming bucketvault's migration lock among other advisory locks.
_PG_LOCK_KEY = 0x6275636B7661  # "buckva"
# Spelled out per dialect: the two drivers use different placeholders.
_SELECT = {
    "sqlite": "SELECT 1 FROM schema_migrations WHERE version = ?",
    "postgres": "SELECT 1 FROM schema_migrations WHERE version = %s",
}
_RECORD = {
    "sqlite": "INSERT INTO schema_migrations (version, name, applied_at)"
    " VALUES (?, ?, CURRENT_TIMESTAMP)",
    "postgres": "INSERT INTO schema_migrations (version, name, applied_at)"
    " VALUES (%s, %s, CURRENT_TIMESTAMP)",
}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


class Connection(Protocol):
    """The slice of a DB-API connection the runner needs (sqlite3 or psycopg, autocommit)."""

    def cursor(self) -> Any: ...


def load_migrations(dialect: Dialect) -> list[Migration]:
    """The dialect's migration files, in version order."""
    folder = resources.files("bucketvault.store").joinpath("migrations", dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions for {dialect}: {versions}")
    return found


def split_sqlite_script(sql: str) -> list[str]:
    """Split a script into statements; sqlite3.complete_statement knows about triggers."""
    statements: list[str] = []
    buffer = ""
    for piece in sql.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        raise ValueError("migration ends with an incomplete statement")
    return [s for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    lines = (line.split("--", 1)[0].strip() for line in statement.splitlines())
    return any(line and line != ";" for line in lines)


def apply_migrations(conn: Connection, dialect: Dialect) -> list[int]:
    """Apply pending migrations; return the versions applied by this call."""
    begin = "BEGIN IMMEDIATE" if dialect == "sqlite" else "BEGIN"
    applied_now: list[int] = []
    cur = conn.cursor()
    for migration in load_migrations(dialect):
        cur.execute(begin)
        try:
            if dialect == "postgres":
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)"
            )
            cur.execute(_SELECT[dialect], (migration.version,))
            if cur.fetchall():
                cur.execute("ROLLBACK")
                continue
            if dialect == "sqlite":
                for statement in split_sqlite_script(migration.sql):
                    cur.execute(statement)
            else:
                cur.execute(migration.sql)
            cur.execute(_RECORD[dialect], (migration.version, migration.name))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        applied_now.append(migration.version)
    return applied_now


__all__ = ["Dialect", "Migration", "apply_migrations", "load_migrations", "split_sqlite_script"]
