"""The Store protocol written once in SQL, run on a :class:`Dialect` (SQLite or PostgreSQL).

Every method is one transaction (a single read is its own). Races are settled by the
database, not by us: idempotent inserts are ``INSERT ... ON CONFLICT DO NOTHING`` then
``SELECT``; compare-and-swap is an ``UPDATE ... WHERE version = expected``, which
PostgreSQL's READ COMMITTED re-checks after the row lock and SQLite serialises under its
write lock. Statements use ``?`` placeholders; a dialect whose driver wants another
style rewrites them, so no statement here may hold a literal ``?`` or ``%``.

Driver errors never leave the store: each becomes a service error with a fixed message
and no chained driver exception, because a driver's message can quote a failing row
(envelope bytes included).
"""

from __future__ import annotations

import enum
import errno
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from bucketvault.errors import (
    Aborted,
    AlreadyExists,
    BucketVaultError,
    Internal,
    NotFound,
    Unavailable,
)
from bucketvault.models import Mount
from bucketvault.store._rows import (
    AUDIT,
    CHECKPOINTS,
    CREDENTIALS,
    MOUNTS,
    SERVICE_KEYS,
    RowMapper,
    Table,
    TimeCodec,
)
from bucketvault.store.base import (
    AuditBatch,
    AuditCheckpoint,
    AuditFilter,
    AuditRow,
    LinkRevocation,
    ServiceKeyRecord,
    StoredCredential,
    Writes,
)

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="SqlStore")

_PAGE = 500
_FAR_PAST = datetime(1, 1, 1, tzinfo=UTC)
_FAR_FUTURE = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_MIN_SEQ = -(2**63)
_CREDENTIAL_ID = CREDENTIALS.columns.index("credential_id")

_LINK_INSERT = (
    "INSERT INTO link_revocations (link_id, tenant, mount_id, revoked_at, revoked_by, reason)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_LINK_SELECT = (
    "SELECT link_id, tenant, mount_id, revoked_at, revoked_by, reason FROM link_revocations"
    " WHERE tenant = ? AND mount_id = ? AND link_id = ?"
)
_REBIND = (
    "UPDATE mounts SET credential_id = ?, version = version + 1, updated_at = ?"  # noqa: S608
    f" WHERE mount_id = ? AND tenant = ? AND version = ? RETURNING {MOUNTS.column_list}"
)
# Every column but the key, the tenant and created_at; version is the caller's new one.
_REPLACED = tuple(c for c in MOUNTS.columns if c not in ("mount_id", "tenant", "created_at"))
_REPLACE = (
    f"UPDATE mounts SET {', '.join(f'{c} = ?' for c in _REPLACED)}"  # noqa: S608
    f" WHERE mount_id = ? AND tenant = ? AND version = ? RETURNING {MOUNTS.column_list}"
)
_DELETE = (
    "DELETE FROM mounts WHERE mount_id = ? AND tenant = ? AND version = ?"  # noqa: S608
    f" RETURNING {MOUNTS.column_list}"
)
_REVOKE = (
    "UPDATE credentials SET state = 'REVOKED', envelope = NULL, revoked_at = ?,"
    " revoked_by = ?, revoke_reason = ?"
    " WHERE credential_id = ? AND tenant = ? AND state = 'ACTIVE'"
)


class Fault(enum.Enum):
    """What a driver error means to the store; each dialect classifies its own driver's."""

    BUSY = enum.auto()  # a lock or a timeout: retry
    CONFLICT = enum.auto()  # the database aborted a conflicting transaction: retry
    CLOSED = enum.auto()  # the store was closed
    UNAVAILABLE = enum.auto()  # the database cannot be reached or used
    FOREIGN_KEY = enum.auto()  # a referenced row is missing
    UNIQUE_MOUNT_NAME = enum.auto()  # mounts (tenant, name)
    UNIQUE = enum.auto()  # any other unique or primary key
    ERROR = enum.auto()  # anything else: a bug or a broken database


def fault_error(fault: Fault) -> BucketVaultError:
    """The service error for a fault that no method turned into its own answer."""
    if fault is Fault.BUSY:
        return Unavailable("the store is busy; retry", reason="STORE_BUSY")
    if fault is Fault.CONFLICT:
        return Aborted(
            "the store aborted a conflicting transaction; retry", reason="STORE_CONFLICT"
        )
    if fault is Fault.CLOSED:
        return Unavailable("the store is closed", reason="STORE_CLOSED")
    if fault is Fault.UNAVAILABLE:
        return Unavailable("the store is unavailable", reason="STORE_UNAVAILABLE")
    return Internal("store error", reason="STORE_ERROR")


_CAUSE = "_bucketvault_driver_fault"


def _driver_fault_name(exc: Exception) -> str:
    """The driver's name for what went wrong: SQLite's extended error name, else the
    exception class (with PostgreSQL's SQLSTATE) or an errno's symbol. Never a message:
    messages can quote values."""
    name = getattr(exc, "sqlite_errorname", "") or type(exc).__name__
    state = getattr(exc, "sqlstate", None)
    if state:
        return f"{name} (SQLSTATE {state})"
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code in errno.errorcode:
        return f"{name} ({errno.errorcode[code]})"
    return str(name)


def driver_failure(fault: Fault, exc: Exception) -> BucketVaultError:
    """fault_error(fault), remembering the driver's fault name for the logs (driver_cause)."""
    failure = fault_error(fault)
    setattr(failure, _CAUSE, _driver_fault_name(exc))
    return failure


def driver_cause(error: BaseException) -> str:
    """The driver fault behind a store error ("SQLITE_FULL" ...), "" if none: for logs."""
    return str(getattr(error, _CAUSE, ""))


class Result(Protocol):
    """The slice of a DB-API cursor the store reads after a statement."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Session(Protocol):
    """Statements inside one open transaction."""

    def execute(self, sql: str, params: Sequence[Any], /) -> Result: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> object: ...


class Dialect(TimeCodec, Protocol):
    """Everything that differs between the databases the SQL store runs on."""

    # The driver's root error class, classified by fault().
    driver_error: type[Exception]
    # The LIMIT parameter that means "no limit".
    no_limit: int | None

    def migrate(self) -> None:
        """Apply pending schema migrations (migrations/<dialect>/*.sql)."""
        ...

    def fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """The rows of one read statement, run as its own transaction."""
        ...

    def transaction(self) -> AbstractContextManager[Session]:
        """A write transaction: committed if the block ends normally, else rolled back."""
        ...

    def fault(self, exc: Exception) -> Fault:
        """What a driver error (an instance of driver_error) means."""
        ...

    def purge_freed(self) -> None:
        """After a committed shred, make sure no copy of the freed bytes stays behind."""
        ...

    def close(self) -> None:
        """Close the connections; later use raises Unavailable(STORE_CLOSED)."""
        ...


def _translating(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Turn driver errors raised by a store method into service errors without driver text.

    The new error is raised after the except block, in this plain frame, so it has no
    __context__ either: a logged traceback never shows the driver's message.
    """

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        failure: BucketVaultError
        try:
            return method(self, *args, **kwargs)
        except self._dialect.driver_error as exc:
            failure = driver_failure(self._dialect.fault(exc), exc)
        raise failure

    return wrapper


def _refusing(
    dialect: Dialect, run: Callable[[], R], refusals: Mapping[Fault, BucketVaultError]
) -> R:
    """run(), with a driver error whose fault refusals names answered by that error instead.

    Any other driver error goes on to the method's translation. The refusal is raised
    outside the except block, so it carries no driver exception either.
    """
    failure: BucketVaultError | None = None
    try:
        return run()
    except dialect.driver_error as exc:
        failure = refusals.get(dialect.fault(exc))
        if failure is None:
            raise
    raise failure


def _translated(dialect: Dialect, run: Callable[[], R]) -> R:
    """run(), a driver error answered by its fault's service error (no driver text)."""
    failure: BucketVaultError
    try:
        return run()
    except dialect.driver_error as exc:
        failure = driver_failure(dialect.fault(exc), exc)
    raise failure


class _Writes:
    """The mutating statements, on one open transaction: a store method runs them in its
    own transaction, an audit batch in the batch's (see Writes)."""

    def __init__(self, dialect: Dialect, rows: RowMapper, tx: Session) -> None:
        self._dialect = dialect
        self._rows = rows
        self._tx = tx

    def insert_credential(self, stored: StoredCredential) -> StoredCredential:
        """Insert, or return the row already holding (tenant, idempotency_key)."""
        c = stored.credential
        tx = self._tx
        cur = tx.execute(
            f"{CREDENTIALS.insert} ON CONFLICT DO NOTHING", self._rows.credential_params(stored)
        )
        if cur.rowcount == 1:
            return stored
        if stored.idempotency_key:
            # PostgreSQL: a fresh statement snapshot sees the competing insert that made
            # ours a no-op, once that one committed (ON CONFLICT waited for it).
            row = tx.execute(
                f"{CREDENTIALS.select} WHERE tenant = ? AND idempotency_key = ?",
                (c.tenant, stored.idempotency_key),
            ).fetchone()
            if row is not None:
                return self._rows.stored_credential(row)
        raise AlreadyExists(f"credential {c.credential_id!r} exists", reason="CREDENTIAL_EXISTS")

    def revoke_credential(
        self, tenant: str, credential_id: str, by: str, reason: str, now: datetime
    ) -> StoredCredential | None:
        """Mark revoked and drop the envelope; the caller purges once committed."""
        self._tx.execute(_REVOKE, (self._rows.timestamp(now), by, reason, credential_id, tenant))
        row = self._tx.execute(
            f"{CREDENTIALS.select} WHERE credential_id = ? AND tenant = ?",
            (credential_id, tenant),
        ).fetchone()
        return None if row is None else self._rows.stored_credential(row)

    def insert_mount(self, mount: Mount) -> None:
        """Insert; AlreadyExists(MOUNT_NAME_TAKEN) if the tenant already has that name."""
        refusals = {
            Fault.FOREIGN_KEY: NotFound(
                f"credential {mount.credential_id!r} not found", reason="CREDENTIAL_NOT_FOUND"
            ),
            Fault.UNIQUE_MOUNT_NAME: AlreadyExists(
                f"mount name {mount.name!r} is taken", reason="MOUNT_NAME_TAKEN"
            ),
            Fault.UNIQUE: AlreadyExists(f"mount {mount.mount_id!r} exists", reason="MOUNT_EXISTS"),
        }
        params = self._rows.mount_params(mount)
        _refusing(self._dialect, lambda: self._tx.execute(MOUNTS.insert, params), refusals)

    def rebind_mount(
        self, tenant: str, mount_id: str, credential_id: str, expected_version: int, now: datetime
    ) -> Mount:
        """Compare-and-swap on version: point the mount at another credential."""
        params = (credential_id, self._rows.timestamp(now), mount_id, tenant, expected_version)
        tx = self._tx
        row = _refusing(
            self._dialect,
            lambda: tx.execute(_REBIND, params).fetchone(),
            {
                Fault.FOREIGN_KEY: NotFound(
                    f"credential {credential_id!r} not found", reason="CREDENTIAL_NOT_FOUND"
                )
            },
        )
        if row is not None:
            return self._rows.mount(row)
        raise self._lost(tenant, mount_id, expected_version)

    def _lost(self, tenant: str, mount_id: str, expected_version: int) -> BucketVaultError:
        """Why a compare-and-swap on a mount matched no row: gone, or changed."""
        exists = self._tx.execute(
            "SELECT 1 FROM mounts WHERE mount_id = ? AND tenant = ?", (mount_id, tenant)
        ).fetchone()
        if exists is None:
            return NotFound(f"mount {mount_id!r} not found", reason="MOUNT_NOT_FOUND")
        return Aborted(
            f"mount {mount_id!r} changed since version {expected_version}",
            reason="VERSION_MISMATCH",
        )

    def replace_mount(self, mount: Mount, expected_version: int) -> Mount:
        """Compare-and-swap on version: store the mount's new fields and version."""
        values = dict(zip(MOUNTS.columns, self._rows.mount_params(mount), strict=True))
        params = (
            *(values[c] for c in _REPLACED),
            mount.mount_id,
            mount.tenant,
            expected_version,
        )
        tx = self._tx
        row = _refusing(
            self._dialect,
            lambda: tx.execute(_REPLACE, params).fetchone(),
            {
                Fault.FOREIGN_KEY: NotFound(
                    f"credential {mount.credential_id!r} not found",
                    reason="CREDENTIAL_NOT_FOUND",
                ),
                Fault.UNIQUE_MOUNT_NAME: AlreadyExists(
                    f"mount name {mount.name!r} is taken", reason="MOUNT_NAME_TAKEN"
                ),
            },
        )
        if row is not None:
            return self._rows.mount(row)
        raise self._lost(mount.tenant, mount.mount_id, expected_version)

    def delete_mount(self, tenant: str, mount_id: str, expected_version: int) -> Mount:
        """Compare-and-swap on version: remove the mount, returned as it was."""
        row = self._tx.execute(_DELETE, (mount_id, tenant, expected_version)).fetchone()
        if row is not None:
            return self._rows.mount(row)
        raise self._lost(tenant, mount_id, expected_version)

    def revoke_link(self, revocation: LinkRevocation) -> LinkRevocation:
        """Add to the revocation list; the first revocation of an id is kept."""
        r = revocation
        self._tx.execute(
            _LINK_INSERT,
            (
                r.link_id,
                r.tenant,
                r.mount_id,
                self._rows.timestamp(r.revoked_at),
                r.revoked_by,
                r.reason,
            ),
        )
        row = self._tx.execute(
            _LINK_SELECT,
            (r.tenant, r.mount_id, r.link_id),
        ).fetchone()
        return LinkRevocation(
            row[0], row[1], row[2], self._dialect.decode_time(row[3]), row[4], row[5]
        )


class _Batch:
    """An audit writer's transaction (see AuditBatch)."""

    def __init__(self, dialect: Dialect, rows: RowMapper, tx: Session) -> None:
        self._dialect = dialect
        self._rows = rows
        self._writes = _Writes(dialect, rows, tx)
        self._tx = tx

    def apply(self, change: Callable[[Writes], R]) -> R:
        """change in a savepoint: a failing one (a unique conflict ...) undoes only itself,
        and PostgreSQL's transaction stays usable for the rest of the batch."""
        self._tx.execute("SAVEPOINT audit_change", ())
        try:
            result = _translated(self._dialect, lambda: change(self._writes))
        except BaseException:
            self._tx.execute("ROLLBACK TO SAVEPOINT audit_change", ())
            raise
        self._tx.execute("RELEASE SAVEPOINT audit_change", ())
        return result

    def append(self, rows: Sequence[AuditRow]) -> None:
        """Insert rows; a duplicate (writer_id, seq) aborts the batch."""
        if not rows:
            return
        taken = Aborted(
            "audit sequence already taken; re-read the writer's head", reason="AUDIT_SEQ_CONFLICT"
        )
        params = [self._rows.audit_params(r) for r in rows]
        _refusing(
            self._dialect, lambda: self._tx.executemany(AUDIT.insert, params), {Fault.UNIQUE: taken}
        )


class SqlStore:
    """The Store protocol on a SQL database; the dialect owns connections and encodings."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._rows = RowMapper(dialect)
        try:
            self._migrate()
        except BaseException:
            dialect.close()
            raise

    # -- plumbing -----------------------------------------------------------
    @_translating
    def _migrate(self) -> None:
        self._dialect.migrate()

    @_translating
    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return self._dialect.fetch(sql, params)

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    def _insert(
        self,
        table: Table,
        rows: Sequence[Sequence[Any]],
        refusals: Mapping[Fault, BucketVaultError],
    ) -> None:
        """Insert rows (parameters in table.columns order) in one transaction, all or none;
        a driver error whose fault refusals names raises that error instead."""
        with self._dialect.transaction() as tx:
            _refusing(self._dialect, lambda: tx.executemany(table.insert, rows), refusals)

    def _limit(self, limit: int) -> int | None:
        return limit if limit > 0 else self._dialect.no_limit

    def _pages(
        self,
        sql: str,
        start: tuple[Any, ...],
        key: Callable[[Any], tuple[Any, ...]],
        *,
        fixed: tuple[Any, ...] = (),
        limit: int = 0,
    ) -> Iterator[Any]:
        """Rows of a keyset query, a page at a time; sql takes (*after, *fixed, page size).

        start is the keyset just below the first row, key(row) the keyset of a row;
        limit <= 0 means every row.
        """
        remaining = limit if limit > 0 else -1
        after = start
        while remaining != 0:
            size = _PAGE if remaining < 0 else min(_PAGE, remaining)
            rows = self._all(sql, (*after, *fixed, size))
            yield from rows
            if remaining > 0:
                remaining -= len(rows)
            if len(rows) < size:
                break
            after = key(rows[-1])

    # -- service keys -------------------------------------------------------
    @_translating
    def add_service_key(self, record: ServiceKeyRecord) -> None:
        """Insert a service key (key_id unique)."""
        taken = AlreadyExists(f"service key {record.key_id!r} exists", reason="SERVICE_KEY_EXISTS")
        self._insert(SERVICE_KEYS, [self._rows.service_key_params(record)], {Fault.UNIQUE: taken})

    @_translating
    def get_service_key(self, key_id: str) -> ServiceKeyRecord | None:
        """One service key by id."""
        row = self._one(f"{SERVICE_KEYS.select} WHERE key_id = ?", (key_id,))
        return None if row is None else self._rows.service_key(row)

    @_translating
    def list_service_keys(self, purpose: str) -> list[ServiceKeyRecord]:
        """Keys of that purpose, oldest first, retired ones included."""
        rows = self._all(
            f"{SERVICE_KEYS.select} WHERE purpose = ? ORDER BY created_at, key_id", (purpose,)
        )
        return [self._rows.service_key(r) for r in rows]

    @_translating
    def replace_service_key_envelope(self, key_id: str, old: bytes, new: bytes) -> bool:
        """Compare-and-swap the envelope (KEK rotation); False if it changed meanwhile."""
        with self._dialect.transaction() as tx:
            cur = tx.execute(
                "UPDATE service_keys SET envelope = ? WHERE key_id = ? AND envelope = ?",
                (new, key_id, old),
            )
            return cur.rowcount == 1

    @_translating
    def retire_service_key(self, key_id: str, at: datetime) -> bool:
        """Set retired_at once; a key retired already keeps its time."""
        with self._dialect.transaction() as tx:
            cur = tx.execute(
                "UPDATE service_keys SET retired_at = ? WHERE key_id = ? AND retired_at IS NULL",
                (self._rows.timestamp(at), key_id),
            )
            return cur.rowcount == 1

    # -- tenants ------------------------------------------------------------
    @_translating
    def ensure_external_id(self, tenant: str, candidate: str, now: datetime) -> str:
        """The tenant's ExternalId: the first stored value wins, forever."""
        with self._dialect.transaction() as tx:
            tx.execute(
                "INSERT INTO tenants (tenant, external_id, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant) DO NOTHING",
                (tenant, candidate, self._rows.timestamp(now)),
            )
            row = tx.execute(
                "SELECT external_id FROM tenants WHERE tenant = ?", (tenant,)
            ).fetchone()
            if row is None:  # pragma: no cover - the insert above guarantees a row
                raise Internal("tenant row vanished", reason="STORE_ERROR")
            return str(row[0])

    # -- credentials --------------------------------------------------------
    def _writes(self, tx: Session) -> _Writes:
        return _Writes(self._dialect, self._rows, tx)

    @_translating
    def insert_credential(self, stored: StoredCredential) -> StoredCredential:
        """Insert, or return the row already holding (tenant, idempotency_key)."""
        with self._dialect.transaction() as tx:
            return self._writes(tx).insert_credential(stored)

    @_translating
    def get_credential(self, tenant: str, credential_id: str) -> StoredCredential | None:
        """One credential of the tenant; another tenant's id is not found."""
        row = self._one(
            f"{CREDENTIALS.select} WHERE credential_id = ? AND tenant = ?", (credential_id, tenant)
        )
        return None if row is None else self._rows.stored_credential(row)

    @_translating
    def find_by_idempotency_key(self, tenant: str, key: str) -> StoredCredential | None:
        """The credential registered with that idempotency key, if any."""
        if not key:
            return None
        row = self._one(
            f"{CREDENTIALS.select} WHERE tenant = ? AND idempotency_key = ?", (tenant, key)
        )
        return None if row is None else self._rows.stored_credential(row)

    @_translating
    def list_credentials(self, tenant: str, after_id: str, limit: int) -> list[StoredCredential]:
        """Ordered by credential_id, strictly after after_id; limit <= 0 means no limit."""
        rows = self._all(
            f"{CREDENTIALS.select} WHERE tenant = ? AND credential_id > ?"
            " ORDER BY credential_id LIMIT ?",
            (tenant, after_id, self._limit(limit)),
        )
        return [self._rows.stored_credential(r) for r in rows]

    @_translating
    def revoke_credential(
        self, tenant: str, credential_id: str, by: str, reason: str, now: datetime
    ) -> StoredCredential | None:
        """Mark revoked, drop the envelope, then purge old copies of it (the dialect's
        purge_freed: SQLite checkpoints its WAL); a revoked credential comes back unchanged."""
        with self._dialect.transaction() as tx:
            stored = self._writes(tx).revoke_credential(tenant, credential_id, by, reason, now)
        if stored is None:
            return None
        # Also on a repeated revoke: a retry finishes a purge that was busy before.
        self._dialect.purge_freed()
        return stored

    @_translating
    def purge_revoked(self) -> None:
        """After a revoke committed in an audit batch: purge freed copies of its envelope."""
        self._dialect.purge_freed()

    @_translating
    def replace_credential_envelope(self, credential_id: str, old: bytes, new: bytes) -> bool:
        """Compare-and-swap the envelope (KEK rotation)."""
        with self._dialect.transaction() as tx:
            cur = tx.execute(
                "UPDATE credentials SET envelope = ?"
                " WHERE credential_id = ? AND envelope = ? AND state = 'ACTIVE'",
                (new, credential_id, old),
            )
            return cur.rowcount == 1

    def iter_live_credentials(self) -> Iterator[StoredCredential]:
        """Every credential with an envelope, all tenants, by credential_id, paged."""
        for row in self._pages(
            f"{CREDENTIALS.select} WHERE credential_id > ? AND envelope IS NOT NULL"
            " ORDER BY credential_id LIMIT ?",
            ("",),
            lambda row: (row[_CREDENTIAL_ID],),
        ):
            yield self._rows.stored_credential(row)

    def iter_envelopes(self) -> Iterator[tuple[str, str, bytes]]:
        """(kind, id, envelope) of every live envelope, fetched a page at a time."""
        first = ("",)
        for cid, envelope in self._pages(
            "SELECT credential_id, envelope FROM credentials WHERE credential_id > ?"
            " AND envelope IS NOT NULL ORDER BY credential_id LIMIT ?",
            first,
            lambda row: (row[0],),
        ):
            yield "credential", cid, bytes(envelope)
        for kid, envelope in self._pages(
            "SELECT key_id, envelope FROM service_keys WHERE key_id > ? ORDER BY key_id LIMIT ?",
            first,
            lambda row: (row[0],),
        ):
            yield "service_key", kid, bytes(envelope)

    # -- mounts -------------------------------------------------------------
    @_translating
    def insert_mount(self, mount: Mount) -> None:
        """Insert; AlreadyExists(MOUNT_NAME_TAKEN) if the tenant already has that name."""
        with self._dialect.transaction() as tx:
            self._writes(tx).insert_mount(mount)

    @_translating
    def get_mount(self, tenant: str, mount_id: str) -> Mount | None:
        """One mount of the tenant; another tenant's id is not found."""
        row = self._one(f"{MOUNTS.select} WHERE mount_id = ? AND tenant = ?", (mount_id, tenant))
        return None if row is None else self._rows.mount(row)

    @_translating
    def list_mounts(self, tenant: str, after_id: str, limit: int) -> list[Mount]:
        """Ordered by mount_id, strictly after after_id; limit <= 0 means no limit."""
        rows = self._all(
            f"{MOUNTS.select} WHERE tenant = ? AND mount_id > ? ORDER BY mount_id LIMIT ?",
            (tenant, after_id, self._limit(limit)),
        )
        return [self._rows.mount(r) for r in rows]

    @_translating
    def mounts_for_bucket(self, tenant: str, bucket: str) -> list[Mount]:
        """Every mount of the tenant on bucket (of any cloud), ordered by mount_id."""
        rows = self._all(
            f"{MOUNTS.select} WHERE tenant = ? AND bucket = ? ORDER BY mount_id",
            (tenant, bucket),
        )
        return [self._rows.mount(r) for r in rows]

    @_translating
    def rebind_mount(
        self, tenant: str, mount_id: str, credential_id: str, expected_version: int, now: datetime
    ) -> Mount:
        """Compare-and-swap on version: point the mount at another credential."""
        with self._dialect.transaction() as tx:
            return self._writes(tx).rebind_mount(
                tenant, mount_id, credential_id, expected_version, now
            )

    @_translating
    def replace_mount(self, mount: Mount, expected_version: int) -> Mount:
        """Compare-and-swap on version: store the mount's new fields and version."""
        with self._dialect.transaction() as tx:
            return self._writes(tx).replace_mount(mount, expected_version)

    @_translating
    def delete_mount(self, tenant: str, mount_id: str, expected_version: int) -> Mount:
        """Compare-and-swap on version: remove the mount, returned as it was."""
        with self._dialect.transaction() as tx:
            return self._writes(tx).delete_mount(tenant, mount_id, expected_version)

    # -- links --------------------------------------------------------------
    @_translating
    def link_revocations(self) -> frozenset[tuple[str, str, str]]:
        """Every revoked link as (tenant, mount_id, link_id)."""
        rows = self._all("SELECT tenant, mount_id, link_id FROM link_revocations", ())
        return frozenset((r[0], r[1], r[2]) for r in rows)

    # -- audit --------------------------------------------------------------
    def append_audit(self, rows: Sequence[AuditRow]) -> None:
        """Insert rows atomically; a duplicate (writer_id, seq) aborts the whole batch."""
        if rows:
            self.audit_batch(lambda batch: batch.append(rows))

    @_translating
    def audit_batch(self, work: Callable[[AuditBatch], R]) -> R:
        """work(batch) in one write transaction: mutations and their records, or nothing."""
        with self._dialect.transaction() as tx:
            return work(_Batch(self._dialect, self._rows, tx))

    @_translating
    def audit_head(self, writer_id: str) -> AuditRow | None:
        """The writer's last row (highest seq)."""
        row = self._one(
            f"{AUDIT.select} WHERE writer_id = ? ORDER BY seq DESC LIMIT 1", (writer_id,)
        )
        return None if row is None else self._rows.audit_row(row)

    def query_audit(self, audit_filter: AuditFilter) -> Iterator[AuditRow]:
        """Rows matching the filter (since inclusive, until exclusive), by (time, writer, seq)."""
        f = audit_filter
        since = self._rows.timestamp(_FAR_PAST if f.since is None else f.since)
        until = self._rows.timestamp(_FAR_FUTURE if f.until is None else f.until)
        for row in self._pages(
            f"{AUDIT.select} WHERE (time, writer_id, seq) > (?, ?, ?) AND time < ?"
            " AND (CAST(? AS TEXT) = '' OR tenant = ?) AND (CAST(? AS TEXT) = '' OR action = ?)"
            " AND (CAST(? AS TEXT) = '' OR principal = ?)"
            " AND (CAST(? AS TEXT) = '' OR outcome = ?)"
            " ORDER BY time, writer_id, seq LIMIT ?",
            # A keyset cursor just below the first possible row: "since" stays inclusive.
            (since, "", _MIN_SEQ),
            lambda row: (row[2], row[0], row[1]),  # (time, writer_id, seq)
            fixed=(
                *(until, f.tenant, f.tenant, f.action, f.action, f.principal, f.principal),
                *(f.outcome, f.outcome),
            ),
            limit=f.limit,
        ):
            yield self._rows.audit_row(row)

    def iter_audit_chain(self) -> Iterator[AuditRow]:
        """Every row ordered by (writer_id, seq), a page at a time."""
        for row in self._pages(
            f"{AUDIT.select} WHERE (writer_id, seq) > (?, ?) ORDER BY writer_id, seq LIMIT ?",
            ("", _MIN_SEQ),
            lambda row: (row[0], row[1]),
        ):
            yield self._rows.audit_row(row)

    # -- audit checkpoints --------------------------------------------------
    @_translating
    def add_audit_checkpoint(self, checkpoint: AuditCheckpoint) -> None:
        """Insert; one already stored for (writer_id, seq, kind) wins."""
        with self._dialect.transaction() as tx:
            tx.execute(
                f"{CHECKPOINTS.insert} ON CONFLICT DO NOTHING",
                self._rows.checkpoint_params(checkpoint),
            )

    @_translating
    def list_audit_checkpoints(self, writer_id: str, from_seq: int = 0) -> list[AuditCheckpoint]:
        """The writer's checkpoints with seq >= from_seq, by (seq, kind)."""
        rows = self._all(
            f"{CHECKPOINTS.select} WHERE writer_id = ? AND seq >= ? ORDER BY seq, kind",
            (writer_id, from_seq),
        )
        return [self._rows.checkpoint(r) for r in rows]

    @_translating
    def audit_writers(self) -> list[str]:
        """Writers with a row or a checkpoint, sorted."""
        rows = self._all(
            "SELECT writer_id FROM audit UNION SELECT writer_id FROM audit_checkpoints"
            " ORDER BY writer_id",
            (),
        )
        return [str(r[0]) for r in rows]

    def iter_audit_writer(self, writer_id: str, from_seq: int = 0) -> Iterator[AuditRow]:
        """The writer's rows with seq >= from_seq, by seq, a page at a time."""
        for row in self._pages(
            f"{AUDIT.select} WHERE seq > ? AND writer_id = ? ORDER BY seq LIMIT ?",
            (from_seq - 1,),
            lambda row: (row[1],),
            fixed=(writer_id,),
        ):
            yield self._rows.audit_row(row)

    @_translating
    def last_audit_seq_before(self, writer_id: str, cutoff: datetime) -> int:
        """The highest seq among the writer's rows older than cutoff (0 if none)."""
        row = self._one(
            "SELECT MAX(seq) FROM audit WHERE writer_id = ? AND time < ?",
            (writer_id, self._rows.timestamp(cutoff)),
        )
        return 0 if row is None or row[0] is None else int(row[0])

    @_translating
    def prune_audit(self, anchor: AuditCheckpoint) -> int:
        """Anchor in, old rows and checkpoints out, in one transaction."""
        writer_id = anchor.writer_id
        with self._dialect.transaction() as tx:
            tx.execute(
                f"{CHECKPOINTS.insert} ON CONFLICT DO NOTHING",
                self._rows.checkpoint_params(anchor),
            )
            # Read now: a driver may hand back one cursor for every statement.
            deleted = tx.execute(
                "DELETE FROM audit WHERE writer_id = ? AND seq <= ?", (writer_id, anchor.seq)
            ).rowcount
            tx.execute(
                "DELETE FROM audit_checkpoints WHERE writer_id = ? AND seq < ?",
                (writer_id, anchor.seq),
            )
            return deleted

    def close(self) -> None:
        """Close the connections; later calls raise Unavailable(STORE_CLOSED)."""
        self._dialect.close()


__all__ = [
    "Dialect",
    "Fault",
    "Result",
    "Session",
    "SqlStore",
    "driver_cause",
    "driver_failure",
    "fault_error",
]
