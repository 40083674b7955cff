"""Verifies the audit chains against their signed checkpoints.

Per writer: contiguous sequence numbers, links and hashes from a starting point (seq 1,
a signed prune anchor, or in incremental mode the last signed "verified" mark), and
every signed checkpoint from there on must name a row that exists and has its hash.
Rows newer than the writer's newest checkpoint are checked by the chain alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bucketvault.audit.chain import GENESIS, row_hash
from bucketvault.audit.signing import TrustedKeys
from bucketvault.store.base import AuditCheckpoint, AuditRow


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    # Rows whose hash was recomputed (in incremental mode: rows after the last verified mark).
    records_checked: int
    writers: int
    first_bad_record: str = ""
    detail: str = ""
    full: bool = False
    # Signed checkpoints compared against the chain (signature and row hash).
    checkpoints_checked: int = 0
    # Rows newer than their writer's newest checkpoint: verified by the hash chain alone.
    records_after_checkpoint: int = 0
    # The audit key checkpoints are signed with now (its public key: GetAuditKey).
    key_id: str = ""


@dataclass(frozen=True)
class Start:
    """Where a writer's verification starts: row seq has hash (seq 0 = before the first row).

    row_expected: the row at seq must still exist (a "verified" mark: the rows were only
    checked, not pruned) and have that hash.
    """

    seq: int
    hash: str
    row_expected: bool = False


GENESIS_START = Start(0, GENESIS)


@dataclass(frozen=True)
class WriterVerdict:
    ok: bool
    checked: int
    checkpoints_checked: int
    after_checkpoint: int
    # The newest signed point the rows were checked against (a checkpoint or the start):
    # where a "verified" mark may go. Not the last row: rows after the newest checkpoint
    # have only the chain behind them, and a mark must not bless what no signature covered.
    covered_seq: int
    covered_hash: str
    first_bad_record: str = ""
    detail: str = ""


def _bad(where: str, detail: str, checked: int, checkpoints: int) -> WriterVerdict:
    return WriterVerdict(False, checked, checkpoints, 0, 0, "", where, detail)


def verify_writer(
    writer_id: str,
    start: Start,
    rows: Iterable[AuditRow],
    checkpoints: Sequence[AuditCheckpoint],
    keys: TrustedKeys,
    *,
    head_seq: int | None = None,
) -> WriterVerdict:
    """One writer's rows (seq >= start.seq, by seq) against its checkpoints (seq >= start.seq).

    head_seq: the writer's highest stored seq, for the missing-tail message (default: the
    last row seen).
    """
    for cp in checkpoints:
        if not keys.verify(cp):
            return _bad(
                f"{writer_id}:{cp.seq}",
                f"checkpoint ({cp.kind}) at seq {cp.seq} has a bad signature or unknown key"
                f" {cp.key_id!r}",
                0,
                0,
            )
    at: dict[int, list[AuditCheckpoint]] = defaultdict(list)
    for cp in checkpoints:
        at[cp.seq].append(cp)
    for cp in at.get(start.seq, ()):
        if cp.hash != start.hash:
            return _bad(
                f"{writer_id}:{start.seq}",
                f"checkpoint ({cp.kind}) at seq {cp.seq} does not match the chain",
                0,
                0,
            )
    checked, cps = 0, len(at.get(start.seq, ()))
    expected, prev = start.seq + 1, start.hash
    last_seq = start.seq
    seen_start = not start.row_expected
    for row in rows:
        where = f"{row.writer_id}:{row.seq}"
        if not seen_start:
            # The row the last verification signed for must still be there, unchanged.
            if row.seq != start.seq or row.hash != start.hash or row_hash(row) != row.hash:
                return _bad(
                    f"{writer_id}:{start.seq}",
                    "the row the last verified checkpoint names is missing or changed",
                    checked,
                    cps,
                )
            seen_start = True
            continue
        if row.seq != expected:
            return _bad(where, f"expected seq {expected}: rows missing", checked, cps)
        if row.prev_hash != prev:
            return _bad(where, "prev_hash does not link", checked, cps)
        if row_hash(row) != row.hash:
            return _bad(where, "hash does not match contents", checked, cps)
        for cp in at.get(row.seq, ()):
            if cp.hash != row.hash:
                return _bad(
                    where,
                    f"checkpoint ({cp.kind}) at seq {cp.seq} does not match the chain",
                    checked,
                    cps,
                )
            cps += 1
        checked += 1
        expected += 1
        prev = row.hash
        last_seq = row.seq
    if not seen_start:
        has = start.seq - 1 if head_seq is None else head_seq
        return _bad(
            f"{writer_id}:{start.seq}",
            f"missing tail: writer {writer_id} has seq {has}, checkpoint says {start.seq}",
            checked,
            cps,
        )
    newest = max((cp.seq for cp in checkpoints), default=start.seq)
    if newest > last_seq:
        has = last_seq if head_seq is None else head_seq
        return _bad(
            f"{writer_id}:{last_seq + 1}",
            f"missing tail: writer {writer_id} has seq {has}, checkpoint says {newest}",
            checked,
            cps,
        )
    covered, covered_hash = start.seq, start.hash
    if newest > start.seq:
        covered, covered_hash = newest, at[newest][0].hash
    return WriterVerdict(True, checked, cps, last_seq - covered, covered, covered_hash)


def verify_chain(rows: Iterable[AuditRow]) -> VerifyResult:
    """Chains alone (no checkpoints), rows ordered by (writer_id, seq); stops at the first bad."""
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


__all__ = [
    "GENESIS_START",
    "Start",
    "VerifyResult",
    "WriterVerdict",
    "verify_chain",
    "verify_writer",
]
