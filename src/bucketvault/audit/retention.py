"""Retention: audit rows older than the configured age are archived, then pruned.

Per writer the prune point is the newest signed checkpoint whose row is older than the
cut-off, so the archive ends on a signature. The rows leaving the database are verified
against their checkpoints while they are written out; only when every writer's part of
the archive verified, and the file is on disk, are they deleted. The prune leaves a
signed "pruned" anchor at the prune point: the remaining chain resumes from it, and a
deletion that reaches further back than the anchor is still a gap.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path

from bucketvault.audit import archive
from bucketvault.audit.signing import HEAD, PRUNED, VERIFIED, AuditSigner, TrustedKeys
from bucketvault.audit.verifier import AuditStores, newest
from bucketvault.audit.verify import GENESIS_START, Start, verify_writer
from bucketvault.clock import Clock
from bucketvault.store.base import AuditCheckpoint, AuditRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionReport:
    archive: Path | None = None
    records_pruned: int = 0
    # Why nothing was pruned although rows were due, "" when nothing went wrong.
    refused: str = ""


@dataclass(frozen=True)
class _Plan:
    writer_id: str
    start: Start
    through: AuditCheckpoint
    checkpoints: list[AuditCheckpoint]


class Retention:
    def __init__(
        self,
        store: AuditStores,
        signer: AuditSigner,
        keys: TrustedKeys,
        clock: Clock,
        *,
        max_age: timedelta,
        archive_dir: Path,
    ) -> None:
        self._store = store
        self._signer = signer
        self._keys = keys
        self._clock = clock
        self._max_age = max_age
        self._dir = archive_dir

    def _plan(self, writer: str, cutoff_seq: int) -> _Plan | None:
        checkpoints = self._store.list_audit_checkpoints(writer)
        anchor = newest(checkpoints, PRUNED, self._keys)
        start = GENESIS_START if anchor is None else Start(anchor.seq, anchor.hash)
        due = [
            c
            for c in checkpoints
            if c.kind in (HEAD, VERIFIED)
            and start.seq < c.seq <= cutoff_seq
            and self._keys.verify(c)
        ]
        if not due:
            return None
        through = max(due, key=lambda c: c.seq)
        covering = [c for c in checkpoints if start.seq <= c.seq <= through.seq]
        return _Plan(writer, start, through, covering)

    def run(self) -> RetentionReport:
        """Archive and prune what is due; nothing is deleted unless all of it verified."""
        now = self._clock.now()
        cutoff = now - self._max_age
        plans = []
        for writer in self._store.audit_writers():
            cutoff_seq = self._store.last_audit_seq_before(writer, cutoff)
            plan = self._plan(writer, cutoff_seq) if cutoff_seq else None
            if plan is not None:
                plans.append(plan)
        if not plans:
            return RetentionReport()
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._dir / f"audit-{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}.jsonl"
        anchors = [
            self._signer.sign(p.writer_id, p.through.seq, p.through.hash, PRUNED, now)
            for p in plans
        ]
        refused = self._write(path, plans, anchors)
        if refused:
            path.unlink(missing_ok=True)
            log.error("audit retention refused: %s", refused)
            return RetentionReport(refused=refused)
        pruned = sum(self._store.prune_audit(a) for a in anchors)
        return RetentionReport(path, pruned)

    def _write(self, path: Path, plans: list[_Plan], anchors: list[AuditCheckpoint]) -> str:
        """Write the archive (0600, never over an existing file), verifying as it goes."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(archive.key_line(self._signer.key_id, self._signer.public_pem()) + "\n")
            for plan, anchor in zip(plans, anchors, strict=True):
                for cp in [*plan.checkpoints, anchor]:
                    out.write(archive.checkpoint_line(cp) + "\n")
            for plan in plans:

                def tee(p: _Plan = plan) -> Iterator[AuditRow]:
                    for row in self._store.iter_audit_writer(p.writer_id, p.start.seq + 1):
                        if row.seq > p.through.seq:
                            return
                        out.write(archive.record_line(row) + "\n")
                        yield row

                verdict = verify_writer(
                    plan.writer_id, plan.start, tee(), plan.checkpoints, self._keys
                )
                if not verdict.ok:
                    return f"{verdict.first_bad_record}: {verdict.detail}"
            out.flush()
            os.fsync(out.fileno())
        return ""


__all__ = ["Retention", "RetentionReport"]
