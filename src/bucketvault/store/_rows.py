"""The tables and the row <-> record mapping, shared by every SQL dialect.

Records map to columns by name: a field and its column share a name, so only the
columns that differ (JSON text, nested policy, enum values) are spelled out. How a
timestamp is stored (ISO text in SQLite, timestamptz in PostgreSQL) is the dialect's
:class:`TimeCodec`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Protocol

from bucketvault.audit.event import AuditEvent
from bucketvault.errors import Internal
from bucketvault.models import (
    Credential,
    CredentialKind,
    CredentialState,
    Method,
    Mount,
    MountPolicy,
)
from bucketvault.store.base import AuditCheckpoint, AuditRow, ServiceKeyRecord, StoredCredential

# Columns that hold a timestamp or bytes, in whichever table they occur.
_TIMES = frozenset({"created_at", "updated_at", "retired_at", "revoked_at", "time", "expires_at"})
_BLOBS = frozenset({"public_key", "envelope", "signature"})


@dataclass(frozen=True)
class Table:
    """A table and the columns every statement reads and writes, in one order."""

    name: str
    columns: tuple[str, ...]

    @classmethod
    def of(cls, name: str, column_list: str) -> Table:
        return cls(name, tuple(c.strip() for c in column_list.split(",")))

    @cached_property
    def times(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c in _TIMES)

    @cached_property
    def blobs(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c in _BLOBS)

    @cached_property
    def column_list(self) -> str:
        return ", ".join(self.columns)

    @cached_property
    def select(self) -> str:
        return f"SELECT {self.column_list} FROM {self.name}"  # noqa: S608 - constant names

    @cached_property
    def insert(self) -> str:
        marks = ", ".join("?" * len(self.columns))
        return f"INSERT INTO {self.name} ({self.column_list}) VALUES ({marks})"  # noqa: S608


SERVICE_KEYS = Table.of(
    "service_keys", "key_id, purpose, suite, public_key, envelope, created_at, retired_at"
)
CREDENTIALS = Table.of(
    "credentials",
    "credential_id, tenant, display_name, kind, state, fingerprint, metadata_json,"
    " warnings_json, created_at, created_by, record_version, revoked_at, revoked_by,"
    " revoke_reason, envelope, idempotency_key, request_hash",
)
MOUNTS = Table.of(
    "mounts",
    "mount_id, tenant, name, bucket, prefix, region, endpoint, credential_id,"
    " max_ttl_seconds, allowed_methods, allow_credential_lifetime, version, created_at,"
    " updated_at, cache_stable_urls",
)
# writer_id, seq and time lead: the audit queries page by (time, writer_id, seq).
AUDIT = Table.of(
    "audit",
    "writer_id, seq, time, principal, tenant, action, resource, outcome, request_id,"
    " detail_json, prev_hash, hash, v, peer, mount_id, credential_id, keys_json, key_count,"
    " keys_sha256, method, requested_ttl_seconds, expires_at, status, reason",
)
# The row's own columns; every other audit column is a field of its event.
_CHAIN = ("writer_id", "seq", "prev_hash", "hash", "v")

CHECKPOINTS = Table.of("audit_checkpoints", "writer_id, seq, hash, kind, time, key_id, signature")


class TimeCodec(Protocol):
    """How a dialect stores an aware UTC datetime and reads it back."""

    def encode_time(self, utc: datetime) -> Any: ...

    def decode_time(self, value: Any) -> datetime: ...


def methods_text(methods: frozenset[Method]) -> str:
    return ",".join(sorted(m.value for m in methods))


def methods(text: str) -> frozenset[Method]:
    return frozenset(Method(name) for name in text.split(",") if name)


# Field names per dataclass type: dataclasses.fields() costs more than the copy itself,
# and the audit writer maps every record.
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _fields(record: Any) -> dict[str, Any]:
    """A dataclass record's fields by name (shallow: nested records stay records)."""
    kind = type(record)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(record))
    return {name: getattr(record, name) for name in names}


class RowMapper:
    """Records to statement parameters and result rows back to records, for one dialect."""

    def __init__(self, codec: TimeCodec) -> None:
        self._codec = codec

    def timestamp(self, value: datetime) -> Any:
        """A statement parameter for an aware datetime; a naive one is a bug, refused."""
        if value.tzinfo is None or value.utcoffset() is None:
            raise Internal("naive datetime given to the store", reason="STORE_NAIVE_DATETIME")
        return self._codec.encode_time(value.astimezone(UTC))

    def _params(self, table: Table, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """INSERT parameters for the table's columns, taken from values by name."""
        return tuple(self._param(values[name]) for name in table.columns)

    def _param(self, value: Any) -> Any:
        return self.timestamp(value) if isinstance(value, datetime) else value

    def _values(self, table: Table, row: Sequence[Any]) -> dict[str, Any]:
        """A result row of table.select by column name, timestamps and bytes decoded."""
        values = dict(zip(table.columns, row, strict=True))
        for name in table.times:
            if values[name] is not None:
                values[name] = self._codec.decode_time(values[name])
        for name in table.blobs:
            if values[name] is not None:
                values[name] = bytes(values[name])
        return values

    # -- service keys: fields and columns are the same ----------------------------------
    def service_key_params(self, record: ServiceKeyRecord) -> tuple[Any, ...]:
        return self._params(SERVICE_KEYS, _fields(record))

    def service_key(self, row: Sequence[Any]) -> ServiceKeyRecord:
        return ServiceKeyRecord(**self._values(SERVICE_KEYS, row))

    # -- audit rows: the chain position and the event's fields, side by side ------------
    def audit_params(self, record: AuditRow) -> tuple[Any, ...]:
        event = record.event
        return self._params(
            AUDIT,
            {
                **_fields(event),
                **{name: getattr(record, name) for name in _CHAIN},
                "keys_json": json.dumps(list(event.keys)),
            },
        )

    def audit_row(self, row: Sequence[Any]) -> AuditRow:
        v = self._values(AUDIT, row)
        chain = {name: v.pop(name) for name in _CHAIN}
        v["keys"] = tuple(json.loads(v.pop("keys_json")))
        return AuditRow(**chain, event=AuditEvent(**v))

    def checkpoint_params(self, record: AuditCheckpoint) -> tuple[Any, ...]:
        return self._params(CHECKPOINTS, _fields(record))

    def checkpoint(self, row: Sequence[Any]) -> AuditCheckpoint:
        return AuditCheckpoint(**self._values(CHECKPOINTS, row))

    # -- credentials ----------------------------------------------------------------------
    def credential_params(self, stored: StoredCredential) -> tuple[Any, ...]:
        c = stored.credential
        return self._params(
            CREDENTIALS,
            {
                **_fields(stored),
                **_fields(c),
                "kind": c.kind.value,
                "state": c.state.value,
                "metadata_json": json.dumps(dict(c.metadata), sort_keys=True),
                "warnings_json": json.dumps(list(c.warnings)),
            },
        )

    def stored_credential(self, row: Sequence[Any]) -> StoredCredential:
        v = self._values(CREDENTIALS, row)
        envelope, idempotency_key, request_hash = (
            v.pop("envelope"),
            v.pop("idempotency_key"),
            v.pop("request_hash"),
        )
        v["kind"] = CredentialKind(v["kind"])
        v["state"] = CredentialState(v["state"])
        v["metadata"] = json.loads(v.pop("metadata_json"))
        v["warnings"] = tuple(json.loads(v.pop("warnings_json")))
        return StoredCredential(
            Credential(**v), envelope, idempotency_key=idempotency_key, request_hash=request_hash
        )

    # -- mounts ---------------------------------------------------------------------------
    def mount_params(self, mount: Mount) -> tuple[Any, ...]:
        policy = mount.policy
        return self._params(
            MOUNTS,
            {
                **_fields(mount),
                "max_ttl_seconds": policy.max_ttl_seconds,
                "allowed_methods": methods_text(policy.allowed_methods),
                "allow_credential_lifetime": int(policy.allow_credential_lifetime),
                "cache_stable_urls": int(policy.cache_stable_urls),
            },
        )

    def mount(self, row: Sequence[Any]) -> Mount:
        v = self._values(MOUNTS, row)
        v["policy"] = MountPolicy(
            max_ttl_seconds=v.pop("max_ttl_seconds"),
            allowed_methods=methods(v.pop("allowed_methods")),
            allow_credential_lifetime=bool(v.pop("allow_credential_lifetime")),
            cache_stable_urls=bool(v.pop("cache_stable_urls")),
        )
        return Mount(**v)


__all__ = [
    "AUDIT",
    "CHECKPOINTS",
    "CREDENTIALS",
    "MOUNTS",
    "SERVICE_KEYS",
    "RowMapper",
    "Table",
    "TimeCodec",
    "methods",
    "methods_text",
]
