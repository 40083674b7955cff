"""Verification of the stored audit log: every writer, full or incremental.

Incremental mode starts each writer at its newest "verified" mark: a checkpoint the
service signs after a verification passed. Only signed marks count, so whoever can write
the database cannot move the starting point forward past rows they changed; deleting
marks only makes the next run check more. Every row after the mark is re-hashed, and the
row at the mark must still carry the signed hash. Full mode starts at seq 1 or at the
writer's signed prune anchor and re-hashes everything.
"""

from __future__ import annotations

from typing import Protocol

from bucketvault.audit.signing import PRUNED, VERIFIED, AuditSigner, TrustedKeys
from bucketvault.audit.verify import GENESIS_START, Start, VerifyResult, verify_writer
from bucketvault.clock import Clock
from bucketvault.store.base import AuditCheckpoint, AuditCheckpointStore, AuditStore


class AuditStores(AuditStore, AuditCheckpointStore, Protocol):
    """The two store roles verification and retention read and write."""


def newest(
    checkpoints: list[AuditCheckpoint], kind: str, keys: TrustedKeys
) -> AuditCheckpoint | None:
    """The highest-seq checkpoint of that kind with a valid signature."""
    signed = [c for c in checkpoints if c.kind == kind and keys.verify(c)]
    return max(signed, key=lambda c: c.seq, default=None)


def start_of(checkpoints: list[AuditCheckpoint], keys: TrustedKeys, *, full: bool) -> Start:
    """Where one writer's verification starts (see the module docstring)."""
    anchor = newest(checkpoints, PRUNED, keys)
    base = GENESIS_START if anchor is None else Start(anchor.seq, anchor.hash)
    if full:
        return base
    mark = newest(checkpoints, VERIFIED, keys)
    if mark is None or mark.seq <= base.seq:
        return base
    return Start(mark.seq, mark.hash, row_expected=True)


class AuditVerifier:
    def __init__(
        self, store: AuditStores, signer: AuditSigner, keys: TrustedKeys, clock: Clock
    ) -> None:
        self._store = store
        self._signer = signer
        self._keys = keys
        self._clock = clock

    def verify(self, *, full: bool = False) -> VerifyResult:
        """Check every writer; when all pass, sign a "verified" mark per writer at the newest
        checkpoint its rows matched (marks are written only after every writer passed)."""
        checked = cps = after = 0
        marks: list[AuditCheckpoint] = []
        writers = self._store.audit_writers()
        for writer in writers:
            # Checkpoints first, rows second: every checkpoint read names a committed row.
            checkpoints = self._store.list_audit_checkpoints(writer)
            start = start_of(checkpoints, self._keys, full=full)
            head = self._store.audit_head(writer)
            verdict = verify_writer(
                writer,
                start,
                self._store.iter_audit_writer(writer, max(start.seq, 1)),
                [c for c in checkpoints if c.seq >= start.seq],
                self._keys,
                head_seq=0 if head is None else head.seq,
            )
            checked += verdict.checked
            cps += verdict.checkpoints_checked
            if not verdict.ok:
                return VerifyResult(
                    False,
                    checked,
                    len(writers),
                    verdict.first_bad_record,
                    verdict.detail,
                    full=full,
                    checkpoints_checked=cps,
                    key_id=self._signer.key_id,
                )
            after += verdict.after_checkpoint
            if verdict.covered_seq > 0 and not (
                start.row_expected and verdict.covered_seq == start.seq
            ):
                marks.append(
                    self._signer.sign(
                        writer,
                        verdict.covered_seq,
                        verdict.covered_hash,
                        VERIFIED,
                        self._clock.now(),
                    )
                )
        for mark in marks:
            self._store.add_audit_checkpoint(mark)
        return VerifyResult(
            True,
            checked,
            len(writers),
            full=full,
            checkpoints_checked=cps,
            records_after_checkpoint=after,
            key_id=self._signer.key_id,
        )


__all__ = ["AuditStores", "AuditVerifier", "newest", "start_of"]
