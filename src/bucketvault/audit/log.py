"""The audit broker: no audit record, no answer.

``record`` blocks until the row is committed to the store. Rows from concurrent
requests are committed together by one writer thread (group commit), which keeps the
hash chain strictly ordered and turns N fsyncs into one.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from bucketvault.audit.chain import GENESIS, row_hash
from bucketvault.audit.event import AuditEvent, failed
from bucketvault.audit.sinks import AuditSink
from bucketvault.clock import Clock
from bucketvault.errors import BucketVaultError, Unavailable
from bucketvault.store.base import AuditBatch, AuditRow, Store, Writes
from bucketvault.store.sql import driver_cause

log = logging.getLogger(__name__)

_MAX_BATCH = 512
R = TypeVar("R")


@dataclass(frozen=True)
class Change(Generic[R]):
    """A write committed in the same transaction as its record: the writer thread runs
    apply in a savepoint of the batch that inserts the record, so the store never holds
    the one without the other. apply must only use the writes it is given."""

    apply: Callable[[Writes], R]
    # The record for what apply returned (a registration that raced into a replay ...).
    settle: Callable[[R, AuditEvent], AuditEvent] | None = None


@dataclass(frozen=True)
class Committed(Generic[R]):
    """A committed record: the change's result, or the error that refused the change (its
    writes rolled back, the record committed says so)."""

    value: R | None = None
    refused: BucketVaultError | None = None


class _Pending:
    __slots__ = ("change", "done", "error", "event", "refused", "value")

    def __init__(self, event: AuditEvent, change: Change[Any] | None) -> None:
        self.event = event
        self.change = change
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.value: Any = None
        self.refused: BucketVaultError | None = None


class AuditLog:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        writer_id: str | None = None,
        sinks: Sequence[AuditSink] = (),
        commit_timeout: float = 10.0,
        on_commit: Callable[[float, int, bool], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._sinks = tuple(sinks)
        self._timeout = commit_timeout
        # (seconds, records, committed) after every group commit: the metrics seam.
        self._on_commit = on_commit
        self.writer_id = writer_id or "w-" + secrets.token_hex(6)
        head = store.audit_head(self.writer_id)
        self._seq, self._prev = (head.seq, head.hash) if head else (0, GENESIS)
        self._head = (self._seq, self._prev)
        self._queue: list[_Pending] = []
        self._cv = threading.Condition()
        self._closed = False
        self.sink_failures = 0
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def now(self) -> datetime:
        """The time a record made now carries."""
        return self._clock.now()

    def record(self, event: AuditEvent, change: Change[R] | None = None) -> Committed[R]:
        """Commit one row (and its change) or raise Unavailable: callers must not answer
        without it. A change that raises is rolled back and recorded as failed."""
        pending = _Pending(event, change)
        with self._cv:
            if self._closed:
                raise Unavailable("the audit log is closed", reason="AUDIT_UNAVAILABLE")
            self._queue.append(pending)
            self._cv.notify()
        if not pending.done.wait(self._timeout):
            raise Unavailable("the audit log did not commit in time", reason="AUDIT_UNAVAILABLE")
        if pending.error is not None:
            raise Unavailable(
                "the audit log could not be written", reason="AUDIT_UNAVAILABLE"
            ) from pending.error
        return Committed(pending.value, pending.refused)

    def queue_depth(self) -> int:
        """Records waiting for the writer thread."""
        return len(self._queue)

    def head(self) -> tuple[int, str]:
        """The last committed (seq, hash): what a checkpoint signs."""
        return self._head

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(timeout=self._timeout)

    def _observe(self, start: float, rows: int, *, ok: bool) -> None:
        if self._on_commit is not None:
            try:
                self._on_commit(time.perf_counter() - start, rows, ok)
            except Exception:  # a metrics fault must not stop the writer thread
                log.exception("audit commit observer failed")

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue and self._closed:
                    return
                batch, self._queue = self._queue[:_MAX_BATCH], self._queue[_MAX_BATCH:]
            self._commit(batch)

    def _row(self, seq: int, prev: str, event: AuditEvent) -> AuditRow:
        unhashed = AuditRow(self.writer_id, seq, prev, "", event)
        return AuditRow(self.writer_id, seq, prev, row_hash(unhashed), event)

    def _settle(self, tx: AuditBatch, p: _Pending) -> AuditEvent:
        """The pending change applied in tx, and the event that records how it went."""
        if p.change is None:
            return p.event
        try:
            p.value = tx.apply(p.change.apply)
        except BucketVaultError as exc:
            # Only this change rolled back; the batch goes on with its failure record. Any
            # other exception is a broken transaction or a bug: the whole batch fails.
            p.refused = exc
            return failed(p.event, exc)
        settle = p.change.settle
        return p.event if settle is None else settle(p.value, p.event)

    def _commit(self, batch: list[_Pending]) -> None:
        def work(tx: AuditBatch) -> list[AuditRow]:
            rows: list[AuditRow] = []
            seq, prev = self._seq, self._prev
            for p in batch:
                seq += 1
                row = self._row(seq, prev, self._settle(tx, p))
                rows.append(row)
                prev = row.hash
            tx.append(rows)
            return rows

        start = time.perf_counter()
        try:
            rows = self._store.audit_batch(work)
        except Exception as exc:  # any store fault must fail the callers, not the thread
            # Nothing was committed: the chain head stays where it was.
            # The driver's fault name (SQLITE_FULL ...), never its message: it can quote rows.
            log.error(
                "audit commit failed: %s (%s)",
                type(exc).__name__,
                driver_cause(exc) or getattr(exc, "reason", "") or "no driver fault",
            )
            self._observe(start, len(batch), ok=False)
            for p in batch:
                p.error = exc
                p.done.set()
            return
        seq, prev = rows[-1].seq, rows[-1].hash
        self._seq, self._prev = seq, prev
        # One attribute store, so head() never pairs one batch's seq with another's hash.
        self._head = (seq, prev)
        self._observe(start, len(rows), ok=True)
        for p in batch:
            p.done.set()
        for sink in self._sinks:
            try:
                sink.emit(rows)
            except Exception as exc:  # a SIEM feed must not take the service down
                self.sink_failures += 1
                log.error("audit sink %s failed: %s", type(sink).__name__, type(exc).__name__)


__all__ = ["AuditEvent", "AuditLog", "Change", "Committed"]
