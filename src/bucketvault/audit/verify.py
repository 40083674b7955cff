"""Verifies every writer's chain: contiguous sequence numbers, links and hashes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bucketvault.audit.chain import GENESIS, row_hash
from bucketvault.store.base import AuditRow


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records_checked: int
    writers: int
    first_bad_record: str = ""
    detail: str = ""


def verify_chain(rows: Iterable[AuditRow]) -> VerifyResult:
    """Rows must come ordered by (writer_id, seq). Stops at the first bad row."""
    checked = 0
    writers = 0
    writer, expected_seq, prev = "", 0, GENESIS
    for row in rows:
        if row.writer_id != writer:
            writer, expected_seq, prev = row.writer_id, 1, GENESIS
            writers += 1
        where = f"{row.writer_id}:{row.seq}"
        if row.seq != expected_seq:
            return VerifyResult(
                False, checked, writers, where, f"expected seq {expected_seq}: rows missing"
            )
        if row.prev_hash != prev:
            return VerifyResult(False, checked, writers, where, "prev_hash does not link")
        if row_hash(row) != row.hash:
            return VerifyResult(False, checked, writers, where, "hash does not match contents")
        checked += 1
        expected_seq += 1
        prev = row.hash
    return VerifyResult(True, checked, writers)


__all__ = ["VerifyResult", "verify_chain"]
