"""The hash that links each audit row to its predecessor in the same writer's chain."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC

from bucketvault.store.base import AuditRow

GENESIS = "0" * 64


def row_hash(row: AuditRow) -> str:
    """SHA-256 over the canonical JSON of every field but the hash itself."""
    body = {
        "writer_id": row.writer_id,
        "seq": row.seq,
        "time": row.time.astimezone(UTC).isoformat(timespec="microseconds"),
        "principal": row.principal,
        "tenant": row.tenant,
        "action": row.action,
        "resource": row.resource,
        "outcome": row.outcome,
        "request_id": row.request_id,
        "detail": row.detail_json,
        "prev_hash": row.prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


__all__ = ["GENESIS", "row_hash"]
