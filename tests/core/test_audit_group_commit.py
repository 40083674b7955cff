"""The audit log's group commit without a writer thread: records queued behind a commit
share the next one, a caller that gives up is withdrawn without stalling the log, and a
change never runs in the leading caller's context."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bucketvault.audit import AuditLog, verify_chain
from bucketvault.audit.draft import AuditDraft, current_draft, drafting
from bucketvault.audit.event import AuditEvent
from bucketvault.audit.log import Change
from bucketvault.clock import FrozenClock
from bucketvault.errors import Unavailable
from bucketvault.store.base import AuditBatch, AuditFilter
from bucketvault.store.sqlite import SqliteStore

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class GatedStore(SqliteStore):
    """A real SQLite store whose next audit transaction waits for ``release`` (the seam
    that lets a test hold one commit open while other records queue behind it)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.hold = threading.Event()
        self.release = threading.Event()
        self.entered = threading.Event()

    def audit_batch(self, work: Callable[[AuditBatch], Any]) -> Any:
        if self.hold.is_set():
            self.hold.clear()
            self.entered.set()
            self.release.wait(30)
        return super().audit_batch(work)


def _event(i: int) -> AuditEvent:
    return AuditEvent(T0, f"r{i}", "ops", "ipv4:1", "signer.sign", "acme", "m")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[GatedStore]:
    s = GatedStore(tmp_path / "audit.sqlite")
    yield s
    s.close()


def _wait_queued(log: AuditLog, depth: int) -> None:
    # Polls the queue, at most ~10 s; nothing about speed is asserted.
    pause = threading.Event()
    for _ in range(2000):
        if log.queue_depth() >= depth:
            return
        pause.wait(0.005)
    raise AssertionError(f"{depth} records never queued")


def test_records_queued_behind_a_commit_share_the_next_one(store: GatedStore) -> None:
    commits: list[int] = []
    log = AuditLog(store, FrozenClock(T0), on_commit=lambda s, rows, ok: commits.append(rows))
    store.hold.set()
    first = threading.Thread(target=log.record, args=(_event(0),))
    first.start()
    assert store.entered.wait(10)
    followers = [threading.Thread(target=log.record, args=(_event(i),)) for i in range(1, 8)]
    for t in followers:
        t.start()
    _wait_queued(log, 7)
    store.release.set()
    for t in (first, *followers):
        t.join(10)
        assert not t.is_alive()
    log.close()
    # The held commit carried the first record; the seven queued meanwhile, one commit.
    assert commits == [1, 7]
    rows = sorted(store.query_audit(AuditFilter()), key=lambda r: r.seq)
    assert sorted(r.event.request_id for r in rows) == [f"r{i}" for i in range(8)]
    assert verify_chain(rows).ok


def test_a_caller_that_gives_up_is_withdrawn_and_the_log_goes_on(store: GatedStore) -> None:
    log = AuditLog(store, FrozenClock(T0), commit_timeout=0.2)
    store.hold.set()
    first = threading.Thread(target=log.record, args=(_event(0),))
    first.start()
    assert store.entered.wait(10)
    # Queued behind the held commit, it times out: no answer, and no record either.
    with pytest.raises(Unavailable) as info:
        log.record(_event(1))
    assert info.value.reason == "AUDIT_UNAVAILABLE"
    assert log.queue_depth() == 0
    store.release.set()
    first.join(10)
    log.record(_event(2))  # the lead was handed on: the log does not stall
    log.close()
    ids = [r.event.request_id for r in store.query_audit(AuditFilter())]
    assert ids == ["r0", "r2"]


def test_a_change_does_not_run_in_the_leading_callers_context(store: GatedStore) -> None:
    log = AuditLog(store, FrozenClock(T0))
    seen: list[AuditDraft | None] = []

    def apply(writes: object) -> None:
        seen.append(current_draft())

    with drafting(AuditDraft("r0", "vault.register", peer="ipv4:1")):
        log.record(_event(0), Change(apply))
    log.close()
    assert seen == [None]


def test_a_closed_log_refuses_records(store: GatedStore) -> None:
    log = AuditLog(store, FrozenClock(T0))
    log.record(_event(0))
    log.close()
    with pytest.raises(Unavailable):
        log.record(_event(1))
