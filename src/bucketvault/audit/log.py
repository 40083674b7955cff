"""The audit broker: no audit record, no answer.

``record`` blocks until the row is committed to the store. Rows from concurrent
requests are committed together by one writer thread (group commit), which keeps the
hash chain strictly ordered and turns N fsyncs into one.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bucketvault.audit.chain import GENESIS, row_hash
from bucketvault.audit.sinks import AuditSink
from bucketvault.clock import Clock
from bucketvault.errors import Unavailable
from bucketvault.store.base import AuditRow, Store

log = logging.getLogger(__name__)

_MAX_BATCH = 512


@dataclass(frozen=True)
class AuditEvent:
    principal: str
    tenant: str
    action: str
    resource: str
    outcome: str
    request_id: str = ""
    # Non-secret context only (counts, methods, hashes of key lists ...).
    detail: Mapping[str, str] = field(default_factory=dict)


class _Pending:
    __slots__ = ("done", "error", "event", "time")

    def __init__(self, event: AuditEvent, time: datetime) -> None:
        self.event = event
        self.time = time
        self.done = threading.Event()
        self.error: BaseException | None = None


class AuditLog:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        writer_id: str | None = None,
        sinks: Sequence[AuditSink] = (),
        commit_timeout: float = 10.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._sinks = tuple(sinks)
        self._timeout = commit_timeout
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

    def record(self, event: AuditEvent) -> None:
        """Commit one row or raise Unavailable: callers must not answer without it."""
        pending = _Pending(event, self._clock.now())
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

    def head(self) -> tuple[int, str]:
        """The last committed (seq, hash): what a checkpoint signs."""
        return self._head

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(timeout=self._timeout)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue and self._closed:
                    return
                batch, self._queue = self._queue[:_MAX_BATCH], self._queue[_MAX_BATCH:]
            self._commit(batch)

    def _commit(self, batch: list[_Pending]) -> None:
        rows: list[AuditRow] = []
        seq, prev = self._seq, self._prev
        for p in batch:
            seq += 1
            e = p.event
            unhashed = AuditRow(
                writer_id=self.writer_id,
                seq=seq,
                time=p.time,
                principal=e.principal,
                tenant=e.tenant,
                action=e.action,
                resource=e.resource,
                outcome=e.outcome,
                request_id=e.request_id,
                detail_json=json.dumps(dict(e.detail), sort_keys=True, separators=(",", ":")),
                prev_hash=prev,
                hash="",
            )
            digest = row_hash(unhashed)
            rows.append(AuditRow(**{**unhashed.__dict__, "hash": digest}))
            prev = digest
        try:
            self._store.append_audit(rows)
        except Exception as exc:  # any store fault must fail the callers, not the thread
            # Nothing was committed: the chain head stays where it was.
            log.error("audit commit failed: %s", type(exc).__name__)
            for p in batch:
                p.error = exc
                p.done.set()
            return
        self._seq, self._prev = seq, prev
        # One attribute store, so head() never pairs one batch's seq with another's hash.
        self._head = (seq, prev)
        for p in batch:
            p.done.set()
        for sink in self._sinks:
            try:
                sink.emit(rows)
            except Exception as exc:  # a SIEM feed must not take the service down
                self.sink_failures += 1
                log.error("audit sink %s failed: %s", type(sink).__name__, type(exc).__name__)


__all__ = ["AuditEvent", "AuditLog"]
