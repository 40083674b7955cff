"""PostgreSQL backend: the store shared by several replicas (psycopg 3).

Every method is one transaction on a connection from a small thread-safe pool.
Races are settled by the database, not by us: idempotent inserts are
``INSERT ... ON CONFLICT DO NOTHING`` then ``SELECT``; compare-and-swap is an
``UPDATE ... WHERE version = expected``, which READ COMMITTED re-checks after the row lock.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import psycopg
from psycopg import errors as pgerrors
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

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

_Conn = psycopg.Connection[TupleRow]
_Cursor = psycopg.Cursor[TupleRow]

P = ParamSpec("P")
R = TypeVar("R")

_PAGE = 500
_FAR_PAST = datetime(1, 1, 1, tzinfo=UTC)
_FAR_FUTURE = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
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
_INSERT_KEY = f"INSERT INTO service_keys ({_KEY_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"  # noqa: S608
_INSERT_CRED = (
    f"INSERT INTO credentials ({_CRED_COLS})"  # noqa: S608
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT DO NOTHING"
)
_INSERT_MOUNT = (
    f"INSERT INTO mounts ({_MOUNT_COLS})"  # noqa: S608
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_INSERT_AUDIT = (
    f"INSERT INTO audit ({_AUDIT_COLS})"  # noqa: S608
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_REBIND = (
    "UPDATE mounts SET credential_id = %s, version = version + 1, updated_at = %s"  # noqa: S608
    f" WHERE mount_id = %s AND tenant = %s AND version = %s RETURNING {_MOUNT_COLS}"
)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise Internal("naive datetime given to the store", reason="STORE_NAIVE_DATETIME")
    return value.astimezone(UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


_methods_text = methods_text
_methods = methods
_rows = RowMapper(lambda value: value.astimezone(UTC), _utc)
_stored_credential = _rows.stored_credential
_mount = _rows.mount
_audit_row = _rows.audit_row
_service_key = _rows.service_key


def _translate(exc: psycopg.Error) -> BucketVaultError:
    """Driver error -> service error, with a fixed message.

    PostgreSQL error details can quote a whole failing row (envelope bytes included), so
    neither the driver's message nor the driver exception itself travels further.
    """
    if isinstance(exc, pgerrors.TransactionRollback):
        return Aborted(
            "the store aborted a conflicting transaction; retry", reason="STORE_CONFLICT"
        )
    if isinstance(exc, pgerrors.LockNotAvailable | pgerrors.QueryCanceled):
        return Unavailable("the store is busy; retry", reason="STORE_BUSY")
    if isinstance(exc, psycopg.OperationalError):
        return Unavailable("the store is unavailable", reason="STORE_UNAVAILABLE")
    return Internal("store error", reason="STORE_ERROR")


def _translating(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn driver errors raised by fn into service errors that carry no driver text.

    The new error is raised after the except block, in this plain frame, so it has no
    __context__ either: a logged traceback never shows the driver's message.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        failure: BucketVaultError
        try:
            return fn(*args, **kwargs)
        except psycopg.Error as exc:
            failure = _translate(exc)
        raise failure

    return wrapper


class _Pool:
    """A few long-lived autocommit connections, handed to one thread at a time."""

    def __init__(self, conninfo: str, size: int, acquire_timeout: float) -> None:
        self._conninfo = conninfo
        self._acquire_timeout = acquire_timeout
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[_Conn] = []
        self._closed = False

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
            with self._lock:
                if self._closed:
                    raise Unavailable("the store is closed", reason="STORE_CLOSED")
                conn = self._idle.pop() if self._idle else None
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
        with self._lock:
            if healthy and not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class PostgresStore:
    """The Store protocol on a PostgreSQL database."""

    def __init__(self, conninfo: str, *, pool_size: int = 8, acquire_timeout: float = 10.0) -> None:
        self._pool = _Pool(conninfo, pool_size, acquire_timeout)
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    @_translating
    def _migrate(self) -> None:
        with self._pool.connection() as conn:
            apply_migrations(conn, "postgres")

    # -- plumbing -----------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[_Cursor]:
        # Driver errors pass through here; every public method is @_translating.
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    # Single-statement reads run in autocommit: the statement is its own transaction,
    # and skipping BEGIN/COMMIT saves two round trips on the SignURL hot path.
    @_translating
    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        with self._pool.connection() as conn:
            return conn.execute(sql, params).fetchone()

    @_translating
    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    # -- service keys -------------------------------------------------------
    @_translating
    def add_service_key(self, record: ServiceKeyRecord) -> None:
        """Insert a service key (key_id unique)."""
        with self._tx() as cur:
            failure: BucketVaultError | None = None
            try:
                cur.execute(
                    _INSERT_KEY,
                    (
                        record.key_id,
                        record.purpose,
                        record.suite,
                        record.public_key,
                        record.envelope,
                        _utc(record.created_at),
                        _utc_or_none(record.retired_at),
                    ),
                )
            except pgerrors.UniqueViolation:
                failure = AlreadyExists(
                    f"service key {record.key_id!r} exists", reason="SERVICE_KEY_EXISTS"
                )
            if failure is not None:
                raise failure

    @_translating
    def get_service_key(self, key_id: str) -> ServiceKeyRecord | None:
        """One service key by id."""
        row = self._one(f"{_SELECT_KEY} WHERE key_id = %s", (key_id,))
        return None if row is None else _service_key(row)

    @_translating
    def list_service_keys(self, purpose: str) -> list[ServiceKeyRecord]:
        """Keys of that purpose, oldest first, retired ones included."""
        rows = self._all(
            f"{_SELECT_KEY} WHERE purpose = %s ORDER BY created_at, key_id", (purpose,)
        )
        return [_service_key(r) for r in rows]

    @_translating
    def replace_service_key_envelope(self, key_id: str, old: bytes, new: bytes) -> bool:
        """Compare-and-swap the envelope (KEK rotation); False if it changed meanwhile."""
        with self._tx() as cur:
            cur.execute(
                "UPDATE service_keys SET envelope = %s WHERE key_id = %s AND envelope = %s",
                (new, key_id, old),
            )
            return cur.rowcount == 1

    # -- tenants ------------------------------------------------------------
    @_translating
    def ensure_external_id(self, tenant: str, candidate: str, now: datetime) -> str:
        """The tenant's ExternalId: the first stored value wins, forever."""
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO tenants (tenant, external_id, created_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (tenant) DO NOTHING",
                (tenant, candidate, _utc(now)),
            )
            row = cur.execute(
                "SELECT external_id FROM tenants WHERE tenant = %s", (tenant,)
            ).fetchone()
            if row is None:  # pragma: no cover - the insert above guarantees a row
                raise Internal("tenant row vanished", reason="STORE_ERROR")
            return str(row[0])

    # -- credentials --------------------------------------------------------
    @_translating
    def insert_credential(self, stored: StoredCredential) -> StoredCredential:
        """Insert, or return the row already holding (tenant, idempotency_key)."""
        c = stored.credential
        with self._tx() as cur:
            cur.execute(
                _INSERT_CRED,
                _rows.credential_params(stored),
            )
            if cur.rowcount == 1:
                return stored
            if stored.idempotency_key:
                # A fresh statement snapshot: it sees the competing insert that made ours
                # a no-op, once that one committed (ON CONFLICT waited for it).
                row = cur.execute(
                    f"{_SELECT_CRED} WHERE tenant = %s AND idempotency_key = %s",
                    (c.tenant, stored.idempotency_key),
                ).fetchone()
                if row is not None:
                    return _stored_credential(row)
            raise AlreadyExists(
                f"credential {c.credential_id!r} exists", reason="CREDENTIAL_EXISTS"
            )

    @_translating
    def get_credential(self, tenant: str, credential_id: str) -> StoredCredential | None:
        """One credential of the tenant; another tenant's id is not found."""
        row = self._one(
            f"{_SELECT_CRED} WHERE credential_id = %s AND tenant = %s", (credential_id, tenant)
        )
        return None if row is None else _stored_credential(row)

    @_translating
    def find_by_idempotency_key(self, tenant: str, key: str) -> StoredCredential | None:
        """The credential registered with that idempotency key, if any."""
        if not key:
            return None
        row = self._one(f"{_SELECT_CRED} WHERE tenant = %s AND idempotency_key = %s", (tenant, key))
        return None if row is None else _stored_credential(row)

    @_translating
    def list_credentials(self, tenant: str, after_id: str, limit: int) -> list[StoredCredential]:
        """Ordered by credential_id, strictly after after_id; limit <= 0 means no limit."""
        rows = self._all(
            f"{_SELECT_CRED} WHERE tenant = %s AND credential_id > %s"
            " ORDER BY credential_id LIMIT %s",
            (tenant, after_id, limit if limit > 0 else None),
        )
        return [_stored_credential(r) for r in rows]

    @_translating
    def revoke_credential(
        self, tenant: str, credential_id: str, by: str, reason: str, now: datetime
    ) -> StoredCredential | None:
        """Mark revoked and drop the envelope; a revoked credential comes back unchanged.

        PostgreSQL keeps the old row version until VACUUM reclaims it; what is left there
        is ciphertext under the KEK, like any backup.
        """
        with self._tx() as cur:
            cur.execute(
                "UPDATE credentials SET state = 'REVOKED', envelope = NULL, revoked_at = %s,"
                " revoked_by = %s, revoke_reason = %s"
                " WHERE credential_id = %s AND tenant = %s AND state = 'ACTIVE'",
                (_utc(now), by, reason, credential_id, tenant),
            )
            row = cur.execute(
                f"{_SELECT_CRED} WHERE credential_id = %s AND tenant = %s",
                (credential_id, tenant),
            ).fetchone()
        return None if row is None else _stored_credential(row)

    @_translating
    def replace_credential_envelope(self, credential_id: str, old: bytes, new: bytes) -> bool:
        """Compare-and-swap the envelope (KEK rotation)."""
        with self._tx() as cur:
            cur.execute(
                "UPDATE credentials SET envelope = %s"
                " WHERE credential_id = %s AND envelope = %s AND state = 'ACTIVE'",
                (new, credential_id, old),
            )
            return cur.rowcount == 1

    def iter_envelopes(self) -> Iterator[tuple[str, str, bytes]]:
        """(kind, id, envelope) of every live envelope, fetched a page at a time."""
        after = ""
        while True:
            rows = self._all(
                "SELECT credential_id, envelope FROM credentials WHERE envelope IS NOT NULL"
                " AND credential_id > %s ORDER BY credential_id LIMIT %s",
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
                "SELECT key_id, envelope FROM service_keys WHERE key_id > %s"
                " ORDER BY key_id LIMIT %s",
                (after, _PAGE),
            )
            for kid, envelope in rows:
                yield "service_key", kid, bytes(envelope)
            if len(rows) < _PAGE:
                break
            after = rows[-1][0]

    # -- mounts -------------------------------------------------------------
    @_translating
    def insert_mount(self, mount: Mount) -> None:
        """Insert; AlreadyExists(MOUNT_NAME_TAKEN) if the tenant already has that name."""
        with self._tx() as cur:
            failure: BucketVaultError | None = None
            try:
                cur.execute(
                    _INSERT_MOUNT,
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
                        _utc(mount.created_at),
                        _utc(mount.updated_at),
                    ),
                )
            except pgerrors.ForeignKeyViolation:
                failure = NotFound(
                    f"credential {mount.credential_id!r} not found", reason="CREDENTIAL_NOT_FOUND"
                )
            except pgerrors.UniqueViolation as exc:
                if exc.diag.constraint_name == "mounts_tenant_name_key":
                    failure = AlreadyExists(
                        f"mount name {mount.name!r} is taken", reason="MOUNT_NAME_TAKEN"
                    )
                else:
                    failure = AlreadyExists(
                        f"mount {mount.mount_id!r} exists", reason="MOUNT_EXISTS"
                    )
            if failure is not None:
                raise failure

    @_translating
    def get_mount(self, tenant: str, mount_id: str) -> Mount | None:
        """One mount of the tenant; another tenant's id is not found."""
        row = self._one(f"{_SELECT_MOUNT} WHERE mount_id = %s AND tenant = %s", (mount_id, tenant))
        return None if row is None else _mount(row)

    @_translating
    def list_mounts(self, tenant: str, after_id: str, limit: int) -> list[Mount]:
        """Ordered by mount_id, strictly after after_id; limit <= 0 means no limit."""
        rows = self._all(
            f"{_SELECT_MOUNT} WHERE tenant = %s AND mount_id > %s ORDER BY mount_id LIMIT %s",
            (tenant, after_id, limit if limit > 0 else None),
        )
        return [_mount(r) for r in rows]

    @_translating
    def rebind_mount(
        self, tenant: str, mount_id: str, credential_id: str, expected_version: int, now: datetime
    ) -> Mount:
        """Compare-and-swap on version: point the mount at another credential."""
        with self._tx() as cur:
            failure: BucketVaultError | None = None
            row = None
            try:
                row = cur.execute(
                    _REBIND, (credential_id, _utc(now), mount_id, tenant, expected_version)
                ).fetchone()
            except pgerrors.ForeignKeyViolation:
                failure = NotFound(
                    f"credential {credential_id!r} not found", reason="CREDENTIAL_NOT_FOUND"
                )
            if failure is not None:
                raise failure
            if row is not None:
                return _mount(row)
            exists = cur.execute(
                "SELECT 1 FROM mounts WHERE mount_id = %s AND tenant = %s", (mount_id, tenant)
            ).fetchone()
        if exists is None:
            raise NotFound(f"mount {mount_id!r} not found", reason="MOUNT_NOT_FOUND")
        raise Aborted(
            f"mount {mount_id!r} changed since version {expected_version}",
            reason="VERSION_MISMATCH",
        )

    # -- audit --------------------------------------------------------------
    @_translating
    def append_audit(self, rows: Sequence[AuditRow]) -> None:
        """Insert rows atomically; a duplicate (writer_id, seq) aborts the whole batch."""
        if not rows:
            return
        with self._tx() as cur:
            failure: BucketVaultError | None = None
            try:
                cur.executemany(
                    _INSERT_AUDIT,
                    [
                        (
                            r.writer_id,
                            r.seq,
                            _utc(r.time),
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
            except pgerrors.UniqueViolation:
                failure = Aborted(
                    "audit sequence already taken; re-read the writer's head",
                    reason="AUDIT_SEQ_CONFLICT",
                )
            if failure is not None:
                raise failure

    @_translating
    def audit_head(self, writer_id: str) -> AuditRow | None:
        """The writer's last row (highest seq)."""
        row = self._one(
            f"{_SELECT_AUDIT} WHERE writer_id = %s ORDER BY seq DESC LIMIT 1", (writer_id,)
        )
        return None if row is None else _audit_row(row)

    def query_audit(self, audit_filter: AuditFilter) -> Iterator[AuditRow]:
        """Rows matching the filter (since inclusive, until exclusive), by (time, writer, seq)."""
        f = audit_filter
        remaining = f.limit if f.limit > 0 else -1
        # A keyset cursor just below the first possible row: "since" stays inclusive.
        last: tuple[datetime, str, int] = (
            _FAR_PAST if f.since is None else _utc(f.since),
            "",
            _MIN_SEQ,
        )
        until = _FAR_FUTURE if f.until is None else _utc(f.until)
        while remaining != 0:
            size = _PAGE if remaining < 0 else min(_PAGE, remaining)
            rows = self._all(
                f"{_SELECT_AUDIT} WHERE (time, writer_id, seq) > (%s, %s, %s) AND time < %s"
                " AND (%s::text = '' OR tenant = %s) AND (%s::text = '' OR action = %s)"
                " AND (%s::text = '' OR principal = %s)"
                " ORDER BY time, writer_id, seq LIMIT %s",
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
                f"{_SELECT_AUDIT} WHERE (writer_id, seq) > (%s, %s)"
                " ORDER BY writer_id, seq LIMIT %s",
                (*last, _PAGE),
            )
            for row in rows:
                yield _audit_row(row)
            if len(rows) < _PAGE:
                break
            last = (rows[-1][0], rows[-1][1])

    def close(self) -> None:
        """Close the pool; later calls raise Unavailable(STORE_CLOSED)."""
        self._pool.close()


__all__ = ["PostgresStore"]
