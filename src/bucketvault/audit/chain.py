"""The hash that links each audit row to its predecessor in the same writer's chain.

The canonical body is versioned (the row's ``v``). v1 is the body rows had before
migration 0002 added the access fields; such rows still verify. A v1 row whose new
columns hold anything but their migration defaults hashes them too, so filling them in
afterwards (making an old row claim a status it never had) breaks the chain.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bucketvault.store.base import AuditRow

GENESIS = "0" * 64
# The columns migration 0002 added, with the values it gave every older row.
_V1_BLANKS: dict[str, Any] = {
    "peer": "",
    "mount_id": "",
    "credential_id": "",
    "keys": [],
    "key_count": 0,
    "keys_sha256": "",
    "method": "",
    "requested_ttl_seconds": 0,
    "expires_at": None,
    "status": "",
    "reason": "",
}


def _time(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat(timespec="microseconds")


def _v1_body(row: AuditRow) -> dict[str, Any]:
    e = row.event
    return {
        "writer_id": row.writer_id,
        "seq": row.seq,
        "time": _time(e.time),
        "principal": e.principal,
        "tenant": e.tenant,
        "action": e.action,
        "resource": e.resource,
        "outcome": e.outcome,
        "request_id": e.request_id,
        "detail": e.detail_json,
        "prev_hash": row.prev_hash,
    }


def _added(row: AuditRow) -> dict[str, Any]:
    e = row.event
    return {
        "peer": e.peer,
        "mount_id": e.mount_id,
        "credential_id": e.credential_id,
        "keys": list(e.keys),
        "key_count": e.key_count,
        "keys_sha256": e.keys_sha256,
        "method": e.method,
        "requested_ttl_seconds": e.requested_ttl_seconds,
        "expires_at": _time(e.expires_at),
        "status": e.status,
        "reason": e.reason,
    }


def canonical_body(row: AuditRow) -> dict[str, Any] | None:
    """The body row.hash covers, or None for a version this code does not know."""
    if row.v == 1:
        changed = {k: v for k, v in _added(row).items() if v != _V1_BLANKS[k]}
        return {**_v1_body(row), **changed}
    if row.v == 2:
        return {**_v1_body(row), **_added(row), "v": 2}
    return None


def row_hash(row: AuditRow) -> str:
    """SHA-256 over the canonical JSON of every field but the hash itself ("" when the
    row's hash version is unknown, which matches no stored hash)."""
    body = canonical_body(row)
    if body is None:
        return ""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


__all__ = ["GENESIS", "canonical_body", "row_hash"]
