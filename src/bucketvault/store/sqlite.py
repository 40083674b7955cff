"""SQLite backend: the embedded default store, one file in WAL mode.

One connection per thread (WAL lets readers run alongside the single writer, and the
hot path is two point reads per SignURL). Writes take ``BEGIN IMMEDIATE`` so that two
writers queue on the busy timeout instead of deadlocking on a lock upgrade.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from bucketvault.errors import (
    Aborted,
    AlreadyExists,
    BucketVaultError,
    Internal,
    NotFound,
    Unavailable,
)
from bucketvault.models import (
    Mount,
)
from bucketvault.store._rows import RowMapper, methods, methods_text
from bucketvault.store.base import AuditFilter, AuditRow, ServiceKeyRecord, StoredCredential
from bucketvault.store.migrations import apply_migrations

_PAGE = 500
_FAR_PAST = ""  # sorts before every stored timestamp
_FAR_FUTURE = "9999-12-31T23:59:59.999999Z"
_MIN_SEQ = -(2**63)

_CRED_COLS = (
    "credential_id, tenant, display_name, kind, state, fingerprint, metadata_json,"
    " warnings_json, created_at, created_by, record_version, revoked_at, revoked_by,"
    " revoke_reason, envelope, idempotency_key, request_hash"
)
_MOUNT_COLS = (
    "mount_id, tenant, name, bucket, prefix, region, endpoint, credential_id,"
    " max_ttl_seconds, allowed_methods, version, created_at, updated_at"
)
_AUDIT_COLS = (
    "writer_id, seq, time, principal, tenant, action, resource, outcome, request_id,"
    " detail_json, prev_hash, hash"
)
_KEY_COLS = "key_id, purpose, suite, public_key, envelope, created_at, retired_at"

_SELECT_CRED = f"SELECT {_CRED_COLS} FROM credentials"  # noqa: S608 - constant columns
_SELECT_MOUNT = f"SELECT {_MOUNT_COLS} FROM mounts"  # noqa: S608
_SELECT_AUDIT = f"SELECT {_AUDIT_COLS} FROM audit"  # noqa: S608
_SELECT_KEY = f"SELECT {_KEY_COLS} FROM service_keys"  # noqa: S608
_REBIND = (
    "UPDATE mounts SET credential_id = ?, version = version + 1, updated_at = ?"  # noqa: S608
    f" WHERE mount_id = ? AND tenant = ? AND version = ? RETURNING {_MOUNT_COLS}"
)


def _ts(value: datetime) -> str:
    """Fixed-width UTC text, so that text order is time order."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise Internal("naive datetime given to the store", reason="STORE_NAIVE_DATETIME")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ts_or_none(value: datetime | None) -> str | None:
    return None if value is None else _ts(value)


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


_methods_text = methods_text
_methods = methods
_rows = RowMapper(_dt, _ts)
_stored_credential = _rows.stored_credential
_mount = _rows.mount
_audit_row = _rows.audit_row
_service_key = _rows.service_key


def _translate(exc: sqlite3.Error) -> BucketVaultError:
    """Driver error -> service error. SQLite messages name columns, never values."""
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return Unavailable("the store is busy; retry", reason="STORE_BUSY")
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc):
        return Unavailable("the store is closed", reason="STORE_CLOSED")
    if isinstance(exc, sqlite3.OperationalError):
        return Unavailable("the store is unavailable", reason="STORE_UNAVAILABLE")
    return Internal("store error", reason="STORE_ERROR")


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise _translate(exc) from exc


def _require_wal(conn: sqlite3.Connection) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise Internal("SQLite refused WAL mode", reason="STORE_NO_WAL")


def _create_private_file(path: str) -> None:
    """Create the database file 0600 before SQLite does (it would honour the umask)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SqliteStore:
    """The Store protocol on one SQLite file."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 5000) -> None:
        self._path = os.fspath(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        _create_private_file(self._path)
        with _translated():
            apply_migrations(self._conn(), "sqlite")

    # -- plumbing -----------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise Unavailable("the store is closed", reason="STORE_CLOSED")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
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
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        with _translated():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        with _translated():
            return self._conn().execute(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with _translated():
            return self._conn().execute(sql, params).fetchall()

    # -- service keys -------------------------------------------------------
    def add_service_key(self, record: ServiceKeyRecord) -> None:
        """Insert a service key (key_id unique)."""
        with self._tx(write=True) as conn:
            try:
                conn.execute(
                    f"INSERT INTO service_keys ({_KEY_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                    (
                        record.key_id,
                        record.purpose,
                        record.suite,
                        record.public_key,
                        record.envelope,
                        _ts(record.created_at),
                        _ts_or_none(record.retired_at),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise AlreadyExists(
                    f"service key {record.key_id!r} exists", reason="SERVICE_KEY_EXISTS"
                ) from exc

    def get_service_key(self, key_id: str) -> ServiceKeyRecord | None:
        """One service key by id."""
        row = self._one(f"{_SELECT_KEY} WHERE key_id = ?", (key_id,))
        return None if row is None else _service_key(row)

    def list_service_keys(self, purpose: str) -> list[ServiceKeyRecord]:
        """Keys of that purpose, oldest first, retired ones included."""
        rows = self._all(f"{_SELECT_KEY} WHERE purpose = ? ORDER BY created_at, key_id", (purpose,))
        return [_service_key(r) for r in rows]

    def replace_service_key_envelope(self, key_id: str, old: bytes, new: bytes) -> bool:
        """Compare-and-swap the envelope (KEK rotation); False if it changed meanwhile."""
        with self._tx(write=True) as conn:
            cur = conn.execute(
                "UPDATE service_keys SET envelope = ? WHERE key_id = ? AND envelope = ?",
                (new, key_id, old),
            )
            return cur.rowcount == 1

    # -- tenants ------------------------------------------------------------
    def ensure_external_id(self, tenant: str, candidate: str, now: datetime) -> str:
        """The tenant's ExternalId: the first stored value wins, forever."""
        with self._tx(write=True) as conn:
            conn.execute(
                "INSERT INTO tenants (tenant, external_id, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant) DO NOTHING",
                (tenant, candidate, _ts(now)),
            )
            row = conn.execute(
                "SELECT external_id FROM tenants WHERE tenant = ?", (tenant,)
            ).fetchone()
            return str(row[0])

    # -- credentials --------------------------------------------------------
    def insert_credential(self, stored: StoredCredential) -> StoredCredential:
        """Insert, or return the row already holding (tenant, idempotency_key)."""
        c = stored.credential
        with self._tx(write=True) as conn:
            cur = conn.execute(
                f"INSERT INTO credentials ({_CRED_COLS})"  # noqa: S608
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                _rows.credential_params(stored),
            )
            if cur.rowcount == 1:
                return stored
            if stored.idempotency_key:
                row = conn.execute(
                    f"{_SELECT_CRED} WHERE tenant = ? AND idempotency_key = ?",
                    (c.tenant, stored.idempotency_key),
                ).fetchone()
                if row is not None:
                    return _stored_credential(row)
            raise AlreadyExists(
                f"credential {c.credential_id!r} exists", reason="CREDENTIAL_EXISTS"
            )

    def get_credential(self, tenant: str, credential_id: str) -> StoredCredential | None:
        """One credential of the tenant; another tenant's id is not found."""
        row = self._one(
            f"{_SELECT_CRED} WHERE credential_id = ? AND tenant = ?", (credential_id, tenant)
        )
        return None if row is None else _stored_credential(row)

    def find_by_idempotency_key(self, tenant: str, key: str) -> StoredCredential | None:
        """The credential registered with that idempotency key, if any."""
        if not key:
            return None
        row = self._one(f"{_SELECT_CRED} WHERE tenant = ? AND idempotency_key = ?", (tenant, key))
        return None if row is None else _stored_credential(row)

    def list_credentials(self, tenant: str, after_id: str, limit: int) -> list[StoredCredential]:
        """Ordered by credential_id, strictly after after_id; limit <= 0 means no limit."""
        rows = self._all(
            f"{_SELECT_CRED} WHERE tenant = ? AND credential_id > ? ORDER BY credential_id LIMIT ?",
            (tenant, after_id, limit if limit > 0 else -1),
        )
        return [_stored_credential(r) for r in rows]

    def revoke_credential(
        self, tenant: str, credential_id: str, by: str, reason: str, now: datetime
    ) -> StoredCredential | None:
        """Mark revoked, shred the envelope, and checkpoint the WAL so no copy survives."""
        with self._tx(write=True) as conn:
            conn.execute(
                "UPDATE credentials SET state = 'REVOKED', envelope = NULL, revoked_at = ?,"
                " revoked_by = ?, revoke_reason = ?"
                " WHERE credential_id = ? AND tenant = ? AND state = 'ACTIVE'",
                (_ts(now), by, reason, credential_id, tenant),
            )
            row = conn.execute(
                f"{_SELECT_CRED} WHERE credential_id = ? AND tenant = ?",
                (credential_id, tenant),
            ).fetchone()
        if row is None:
            return None
        # Also on a repeated revoke: a retry finishes a checkpoint that was busy before.
        self._checkpoint()
        return _stored_credential(row)

    def _checkpoint(self) -> None:
        """Copy the WAL into the file and truncate it: the old envelope pages go with it."""
        with _translated():
            busy, _, _ = self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise Unavailable(
                "credential revoked, but old copies are not purged yet; retry the revoke",
                reason="SHRED_INCOMPLETE",
            )

    def replace_credential_envelope(self, credential_id: str, old: bytes, new: bytes) -> bool:
        """Compare-and-swap the envelope (KEK rotation)."""
        with self._tx(write=True) as conn:
            cur = conn.execute(
                "UPDATE credentials SET envelope = ?"
                " WHERE credential_id = ? AND envelope = ? AND state = 'ACTIVE'",
                (new, credential_id, old),
            )
            return cur.rowcount == 1

    def iter_envelopes(self) -> Iterator[tuple[str, str, bytes]]:
        """(kind, id, envelope) of every live envelope, fetched a page at a time."""
        after = ""
        while True:
            rows = self._all(
                "SELECT credential_id, envelope FROM credentials"
                " WHERE envelope IS NOT NULL AND credential_id > ? ORDER BY credential_id LIMIT ?",
                (after, _PAGE),
            )
            for cid, envelope in rows:
                yield "credential", cid, bytes(envelope)
            if len(rows) < _PAGE:
                break
            after = rows[-1][0]
        after = ""
        while True:
            rows = self._all(
                "SELECT key_id, envelope FROM service_keys WHERE key_id > ?"
                " ORDER BY key_id LIMIT ?",
                (after, _PAGE),
            )
            for kid, envelope in rows:
                yield "service_key", kid, bytes(envelope)
            if len(rows) < _PAGE:
                break
            after = rows[-1][0]

    # -- mounts -------------------------------------------------------------
    def insert_mount(self, mount: Mount) -> None:
        """Insert; AlreadyExists(MOUNT_NAME_TAKEN) if the tenant already has that name."""
        with self._tx(write=True) as conn:
            try:
                conn.execute(
                    f"INSERT INTO mounts ({_MOUNT_COLS})"  # noqa: S608
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        mount.mount_id,
                        mount.tenant,
                        mount.name,
                        mount.bucket,
                        mount.prefix,
                        mount.region,
                        mount.endpoint,
                        mount.credential_id,
                        mount.policy.max_ttl_seconds,
                        _methods_text(mount.policy.allowed_methods),
                        mount.version,
                        _ts(mount.created_at),
                        _ts(mount.updated_at),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise _mount_conflict(exc, mount) from exc

    def get_mount(self, tenant: str, mount_id: str) -> Mount | None:
        """One mount of the tenant; another tenant's id is not found."""
        row = self._one(f"{_SELECT_MOUNT} WHERE mount_id = ? AND tenant = ?", (mount_id, tenant))
        return None if row is None else _mount(row)

    def list_mounts(self, tenant: str, after_id: str, limit: int) -> list[Mount]:
        """Ordered by mount_id, strictly after after_id; limit <= 0 means no limit."""
        rows = self._all(
            f"{_SELECT_MOUNT} WHERE tenant = ? AND mount_id > ? ORDER BY mount_id LIMIT ?",
            (tenant, after_id, limit if limit > 0 else -1),
        )
        return [_mount(r) for r in rows]

    def rebind_mount(
        self, tenant: str, mount_id: str, credential_id: str, expected_version: int, now: datetime
    ) -> Mount:
        """Compare-and-swap on version: point the mount at another credential."""
        with self._tx(write=True) as conn:
            try:
                row = conn.execute(
                    _REBIND,
                    (credential_id, _ts(now), mount_id, tenant, expected_version),
                ).fetchone()
            except sqlite3.IntegrityError as exc:
                raise NotFound(
                    f"credential {credential_id!r} not found", reason="CREDENTIAL_NOT_FOUND"
                ) from exc
            if row is not None:
                return _mount(row)
            exists = conn.execute(
                "SELECT 1 FROM mounts WHERE mount_id = ? AND tenant = ?", (mount_id, tenant)
            ).fetchone()
        if exists is None:
            raise NotFound(f"mount {mount_id!r} not found", reason="MOUNT_NOT_FOUND")
        raise Aborted(
            f"mount {mount_id!r} changed since version {expected_version}",
            reason="VERSION_MISMATCH",
        )

    # -- audit --------------------------------------------------------------
    def append_audit(self, rows: Sequence[AuditRow]) -> None:
        """Insert rows atomically; a duplicate (writer_id, seq) aborts the whole batch."""
        if not rows:
            return
        with self._tx(write=True) as conn:
            try:
                conn.executemany(
                    f"INSERT INTO audit ({_AUDIT_COLS})"  # noqa: S608
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            r.writer_id,
                            r.seq,
                            _ts(r.time),
                            r.principal,
                            r.tenant,
                            r.action,
                            r.resource,
                            r.outcome,
                            r.request_id,
                            r.detail_json,
                            r.prev_hash,
                            r.hash,
                        )
                        for r in rows
                    ],
                )
            except sqlite3.IntegrityError as exc:
                raise Aborted(
                    "audit sequence already taken; re-read the writer's head",
                    reason="AUDIT_SEQ_CONFLICT",
                ) from exc

    def audit_head(self, writer_id: str) -> AuditRow | None:
        """The writer's last row (highest seq)."""
        row = self._one(
            f"{_SELECT_AUDIT} WHERE writer_id = ? ORDER BY seq DESC LIMIT 1", (writer_id,)
        )
        return None if row is None else _audit_row(row)

    def query_audit(self, audit_filter: AuditFilter) -> Iterator[AuditRow]:
        """Rows matching the filter (since inclusive, until exclusive), by (time, writer, seq)."""
        f = audit_filter
        remaining = f.limit if f.limit > 0 else -1
        # A keyset cursor just below the first possible row: "since" stays inclusive.
        last: tuple[str, str, int] = (
            _FAR_PAST if f.since is None else _ts(f.since),
            "",
            _MIN_SEQ,
        )
        until = _FAR_FUTURE if f.until is None else _ts(f.until)
        while remaining != 0:
            size = _PAGE if remaining < 0 else min(_PAGE, remaining)
            rows = self._all(
                f"{_SELECT_AUDIT} WHERE (time, writer_id, seq) > (?, ?, ?) AND time < ?"
                " AND (? = '' OR tenant = ?) AND (? = '' OR action = ?)"
                " AND (? = '' OR principal = ?)"
                " ORDER BY time, writer_id, seq LIMIT ?",
                (
                    *last,
                    until,
                    f.tenant,
                    f.tenant,
                    f.action,
                    f.action,
                    f.principal,
                    f.principal,
                    size,
                ),
            )
            for row in rows:
                yield _audit_row(row)
            if remaining > 0:
                remaining -= len(rows)
            if len(rows) < size:
                break
            last = (rows[-1][2], rows[-1][0], rows[-1][1])

    def iter_audit_chain(self) -> Iterator[AuditRow]:
        """Every row ordered by (writer_id, seq), a page at a time."""
        last: tuple[str, int] = ("", _MIN_SEQ)
        while True:
            rows = self._all(
                f"{_SELECT_AUDIT} WHERE (writer_id, seq) > (?, ?) ORDER BY writer_id, seq LIMIT ?",
                (*last, _PAGE),
            )
            for row in rows:
                yield _audit_row(row)
            if len(rows) < _PAGE:
                break
            last = (rows[-1][0], rows[-1][1])

    def close(self) -> None:
        """Close every thread's connection; later calls raise Unavailable(STORE_CLOSED)."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()


def _mount_conflict(exc: sqlite3.IntegrityError, mount: Mount) -> BucketVaultError:
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
        return NotFound(
            f"credential {mount.credential_id!r} not found", reason="CREDENTIAL_NOT_FOUND"
        )
    if "mounts.name" in str(exc):
        return AlreadyExists(f"mount name {mount.name!r} is taken", reason="MOUNT_NAME_TAKEN")
    return AlreadyExists(f"mount {mount.mount_id!r} exists", reason="MOUNT_EXISTS")


__all__ = ["SqliteStore"]
