"""The audit broker: no audit record, no answer.

``record`` blocks until the row is committed to the store. Rows from concurrent
requests are committed together (group commit), which keeps the hash chain strictly
ordered and turns N fsyncs into one.

There is no writer thread: a caller that finds no commit under way leads one itself,
taking everything queued, and on its way out hands the lead to the first record queued
behind it. A call on an idle log therefore commits on its own thread with no hand-off
(a woken thread must win the GIL back, which on a busy process costs milliseconds), each
caller wakes at most once, and no caller leads more than one commit, so none pays for a
stream of others.
"""

from __future__ import annotations

import contextvars
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
    """A write committed in the same transaction as its record: the commit's leader runs
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
    __slots__ = ("change", "error", "event", "finished", "lead", "refused", "value", "wake")

    def __init__(self, event: AuditEvent, change: Change[Any] | None) -> None:
        self.event = event
        self.change = change
        # Set when the record's commit ended (committed or failed), or it was given the lead.
        self.wake = threading.Event()
        self.finished = False
        self.lead = False
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
        # True while a caller leads a commit (it or its successor commits the queue).
        self._leading = False
        self._closed = False
        self.sink_failures = 0

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
            if not self._leading:
                self._leading = pending.lead = True
        if not pending.lead:
            pending.wake.wait(self._timeout)
            with self._cv:
                if not pending.finished and not pending.lead:
                    if pending in self._queue:
                        # Withdrawn before any commit took it: nobody waits on it now.
                        self._queue.remove(pending)
                    raise Unavailable(
                        "the audit log did not commit in time", reason="AUDIT_UNAVAILABLE"
                    )
        if not pending.finished:
            self._lead()
        if pending.error is not None:
            raise Unavailable(
                "the audit log could not be written", reason="AUDIT_UNAVAILABLE"
            ) from pending.error
        return Committed(pending.value, pending.refused)

    def _lead(self) -> None:
        """One group commit of what is queued (the leader's own record first), then the
        lead to the next record queued, or none."""
        try:
            with self._cv:
                batch, self._queue = self._queue[:_MAX_BATCH], self._queue[_MAX_BATCH:]
            # An empty context: a change must not see the leading caller's draft or
            # principal (it commits other calls' records too).
            contextvars.Context().run(self._commit, batch)
        finally:
            with self._cv:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.wake.set()
                else:
                    self._leading = False
                    self._cv.notify_all()

    def queue_depth(self) -> int:
        """Records waiting for a commit to take them."""
        return len(self._queue)

    def head(self) -> tuple[int, str]:
        """The last committed (seq, hash): what a checkpoint signs."""
        return self._head

    def close(self) -> None:
        """Refuse new records; wait (up to the commit timeout) for queued ones to commit."""
        with self._cv:
            self._closed = True
            self._cv.wait_for(lambda: not self._leading, self._timeout)

    def _observe(self, start: float, rows: int, *, ok: bool) -> None:
        if self._on_commit is not None:
            try:
                self._on_commit(time.perf_counter() - start, rows, ok)
            except Exception:  # a metrics fault must not fail the commit
                log.exception("audit commit observer failed")

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
                p.finished = True
                p.wake.set()
            return
        seq, prev = rows[-1].seq, rows[-1].hash
        self._seq, self._prev = seq, prev
        # One attribute store, so head() never pairs one batch's seq with another's hash.
        self._head = (seq, prev)
        self._observe(start, len(rows), ok=True)
        for p in batch:
            p.finished = True
            p.wake.set()
        for sink in self._sinks:
            try:
                sink.emit(rows)
            except Exception as exc:  # a SIEM feed must not take the service down
                self.sink_failures += 1
                log.error("audit sink %s failed: %s", type(sink).__name__, type(exc).__name__)


__all__ = ["AuditEvent", "AuditLog", "Change", "Committed"]
