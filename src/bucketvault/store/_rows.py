"""Row <-> record mapping shared by the SQLite and PostgreSQL backends.

The backends select columns in the same order; they differ only in how a timestamp
comes back (ISO text in SQLite, timestamptz in PostgreSQL), so that is injected.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from bucketvault.models import (
    Credential,
    CredentialKind,
    CredentialState,
    Method,
    Mount,
    MountPolicy,
)
from bucketvault.store.base import AuditRow, ServiceKeyRecord, StoredCredential


def methods_text(methods: frozenset[Method]) -> str:
    return ",".join(sorted(m.value for m in methods))


def methods(text: str) -> frozenset[Method]:
    return frozenset(Method(name) for name in text.split(",") if name)


class RowMapper:
    def __init__(
        self, to_datetime: Callable[[Any], datetime], from_datetime: Callable[[datetime], Any]
    ) -> None:
        self._dt = to_datetime
        self._db_time = from_datetime

    def credential_params(self, stored: StoredCredential) -> tuple[Any, ...]:
        """INSERT parameters in the column order the row readers expect."""
        c = stored.credential
        return (
            c.credential_id,
            c.tenant,
            c.display_name,
            c.kind.value,
            c.state.value,
            c.fingerprint,
            json.dumps(dict(c.metadata), sort_keys=True),
            json.dumps(list(c.warnings)),
            self._db_time(c.created_at),
            c.created_by,
            c.record_version,
            None if c.revoked_at is None else self._db_time(c.revoked_at),
            c.revoked_by,
            c.revoke_reason,
            stored.envelope,
            stored.idempotency_key,
            stored.request_hash,
        )

    def _dt_or_none(self, value: Any) -> datetime | None:
        return None if value is None else self._dt(value)

    def stored_credential(self, row: Sequence[Any]) -> StoredCredential:
        credential = Credential(
            credential_id=row[0],
            tenant=row[1],
            display_name=row[2],
            kind=CredentialKind(row[3]),
            state=CredentialState(row[4]),
            fingerprint=row[5],
            metadata=json.loads(row[6]),
            warnings=tuple(json.loads(row[7])),
            created_at=self._dt(row[8]),
            created_by=row[9],
            record_version=row[10],
            revoked_at=self._dt_or_none(row[11]),
            revoked_by=row[12],
            revoke_reason=row[13],
        )
        envelope = None if row[14] is None else bytes(row[14])
        return StoredCredential(credential, envelope, idempotency_key=row[15], request_hash=row[16])

    def mount(self, row: Sequence[Any]) -> Mount:
        return Mount(
            mount_id=row[0],
            tenant=row[1],
            name=row[2],
            bucket=row[3],
            prefix=row[4],
            region=row[5],
            endpoint=row[6],
            credential_id=row[7],
            policy=MountPolicy(max_ttl_seconds=row[8], allowed_methods=methods(row[9])),
            version=row[10],
            created_at=self._dt(row[11]),
            updated_at=self._dt(row[12]),
        )

    def audit_row(self, row: Sequence[Any]) -> AuditRow:
        return AuditRow(
            writer_id=row[0],
            seq=row[1],
            time=self._dt(row[2]),
            principal=row[3],
            tenant=row[4],
            action=row[5],
            resource=row[6],
            outcome=row[7],
            request_id=row[8],
            detail_json=row[9],
            prev_hash=row[10],
            hash=row[11],
        )

    def service_key(self, row: Sequence[Any]) -> ServiceKeyRecord:
        return ServiceKeyRecord(
            key_id=row[0],
            purpose=row[1],
            suite=row[2],
            public_key=bytes(row[3]),
            envelope=bytes(row[4]),
            created_at=self._dt(row[5]),
            retired_at=self._dt_or_none(row[6]),
        )


__all__ = ["RowMapper", "methods", "methods_text"]
