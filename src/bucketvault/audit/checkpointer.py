"""Signs the audit writer's head: at least every interval while the chain moves, and at close.

A checkpoint is what makes a cut tail visible: rows deleted after it leave the signed
head pointing past the end of the chain. Rows newer than the last checkpoint are
protected by the hash chain alone, so the interval bounds how much tail an attacker
could remove unseen.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bucketvault.audit.log import AuditLog
from bucketvault.audit.signing import HEAD, AuditSigner
from bucketvault.clock import Clock
from bucketvault.store.base import AuditCheckpoint, AuditCheckpointStore

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = timedelta(seconds=60)


class Checkpointer:
    """The audit writer's checkpoints; tick() is called by a Periodic, close() at shutdown."""

    def __init__(
        self,
        audit_log: AuditLog,
        store: AuditCheckpointStore,
        signer: AuditSigner,
        clock: Clock,
        interval: timedelta = DEFAULT_INTERVAL,
    ) -> None:
        self._log = audit_log
        self._store = store
        self._signer = signer
        self._clock = clock
        self.interval = interval
        self._lock = threading.Lock()
        # Start from the head as found: this process signs only rows it wrote itself, never
        # a head someone may have edited in the database while the service was down.
        self._signed = audit_log.head()
        self._last_time = clock.now()

    def tick(self) -> AuditCheckpoint | None:
        """Sign the head if the chain moved and the interval has passed."""
        return self._checkpoint(force=False)

    def checkpoint_now(self) -> AuditCheckpoint | None:
        """Sign the head now if the chain moved (shutdown, tests)."""
        return self._checkpoint(force=True)

    def _checkpoint(self, *, force: bool) -> AuditCheckpoint | None:
        with self._lock:
            now = self._clock.now()
            head = self._log.head()
            if head == self._signed or (not force and now - self._last_time < self.interval):
                return None
            seq, chain_hash = head
            checkpoint = self._signer.sign(self._log.writer_id, seq, chain_hash, HEAD, now)
            try:
                self._store.add_audit_checkpoint(checkpoint)
            except Exception as exc:  # the chain still stands; the next tick tries again
                log.error("audit checkpoint failed: %s", type(exc).__name__)
                return None
            self._signed, self._last_time = head, now
            return checkpoint


@dataclass(frozen=True)
class Job:
    """Something a Periodic runs once its interval has passed on the injected clock."""

    name: str
    interval: timedelta
    run: Callable[[], object]


class Periodic:
    """One background thread that runs jobs when the injected clock says they are due.

    It polls every ``poll`` seconds of real time and asks the clock whether a job is due,
    so a test moving a FrozenClock sees the job run without waiting the interval.
    """

    def __init__(self, clock: Clock, jobs: Sequence[Job], *, poll: float = 1.0) -> None:
        self._clock = clock
        self._jobs = tuple(jobs)
        self._poll = poll
        self._stop = threading.Event()
        start = clock.now()
        self._last: dict[str, datetime] = {j.name: start for j in self._jobs}
        self._thread = threading.Thread(target=self._loop, name="audit-periodic", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._poll):
            for job in self._jobs:
                now = self._clock.now()
                if now - self._last[job.name] < job.interval:
                    continue
                self._last[job.name] = now
                try:
                    job.run()
                except Exception as exc:  # a failed job must not stop the others
                    log.error("audit job %s failed: %s", job.name, type(exc).__name__)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


__all__ = ["DEFAULT_INTERVAL", "Checkpointer", "Job", "Periodic"]
