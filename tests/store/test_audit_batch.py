"""The audit writer's transaction on both backends: a mutation and its record commit
together, a failing mutation undoes only itself, and rows written before migration 0002
still verify after it."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import psycopg
import pytest

from bucketvault.audit import AuditLog, verify_chain
from bucketvault.audit.chain import GENESIS
from bucketvault.audit.event import AuditEvent
from bucketvault.audit.log import Change
from bucketvault.clock import FrozenClock
from bucketvault.errors import AlreadyExists, Unavailable
from bucketvault.store import open_store
from bucketvault.store.base import AuditBatch, AuditFilter, Store
from bucketvault.store.migrations import load_migrations, split_sqlite_script

if TYPE_CHECKING:  # conftest is not importable under --import-mode=importlib
    from conftest import Factory

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def _event(action: str, resource: str, seq: int = 0) -> AuditEvent:
    return AuditEvent(
        T0 + timedelta(seconds=seq), f"r{seq}", "ops", "ipv4:1", action, "acme", resource
    )


def test_a_failing_change_rolls_back_only_itself(store: Store, make: Factory) -> None:
    cred = make.credential()
    store.insert_credential(cred)
    cid = cred.credential.credential_id
    first = make.mount(cid, name="photos")
    clash = make.mount(cid, name="photos")  # same (tenant, name): refused by the database
    other = make.mount(cid, name="videos")

    def work(batch: AuditBatch) -> list[str]:
        outcomes = []
        for mount in (first, clash, other):
            try:
                batch.apply(lambda w, m=mount: w.insert_mount(m))
                outcomes.append("ok")
            except AlreadyExists as exc:
                outcomes.append(exc.reason)
        batch.append([make.audit("w", 1), make.audit("w", 2), make.audit("w", 3)])
        return outcomes

    assert store.audit_batch(work) == ["ok", "MOUNT_NAME_TAKEN", "ok"]
    assert store.get_mount("acme", first.mount_id) == first
    assert store.get_mount("acme", clash.mount_id) is None
    assert store.get_mount("acme", other.mount_id) == other
    assert [r.seq for r in store.iter_audit_chain()] == [1, 2, 3]


def test_a_batch_whose_records_fail_keeps_none_of_its_changes(store: Store, make: Factory) -> None:
    store.append_audit([make.audit("w", 1)])
    cred = make.credential()

    def work(batch: AuditBatch) -> None:
        batch.apply(lambda w: w.insert_credential(cred))
        batch.append([make.audit("w", 1)])  # seq taken: the whole transaction aborts

    with pytest.raises(Exception, match="audit sequence"):
        store.audit_batch(work)
    assert store.get_credential("acme", cred.credential.credential_id) is None


def test_the_log_records_a_refused_change_as_its_failure(store: Store, make: Factory) -> None:
    cred = make.credential()
    store.insert_credential(cred)
    cid = cred.credential.credential_id
    taken = make.mount(cid, name="photos")
    store.insert_mount(taken)
    clash = make.mount(cid, name="photos")
    log = AuditLog(store, FrozenClock(T0), writer_id="w")
    try:
        done = log.record(
            _event("vault.create_mount", clash.mount_id),
            Change(lambda w: w.insert_mount(clash)),
        )
        assert isinstance(done.refused, AlreadyExists)
        fresh = make.mount(cid, name="fresh")
        ok = log.record(
            _event("vault.create_mount", fresh.mount_id), Change(lambda w: w.insert_mount(fresh))
        )
        assert ok.refused is None
    finally:
        log.close()
    assert store.get_mount("acme", clash.mount_id) is None
    assert store.get_mount("acme", fresh.mount_id) == fresh
    rows = list(store.iter_audit_chain())
    assert [(r.event.resource, r.event.outcome, r.event.status, r.event.reason) for r in rows] == [
        (clash.mount_id, "error", "ALREADY_EXISTS", "MOUNT_NAME_TAKEN"),
        (fresh.mount_id, "ok", "OK", ""),
    ]
    assert verify_chain(rows).ok


def test_no_record_no_change(store: Store, make: Factory) -> None:
    log = AuditLog(store, FrozenClock(T0), writer_id="w")
    log.close()
    cred = make.credential()
    with pytest.raises(Unavailable) as err:
        log.record(_event("vault.register", "c"), Change(lambda w: w.insert_credential(cred)))
    assert err.value.reason == "AUDIT_UNAVAILABLE"
    assert store.get_credential("acme", cred.credential.credential_id) is None


# -- rows written before migration 0002 ---------------------------------------


def _v1_hash(body: dict[str, object]) -> str:
    """The hash as the code before migration 0002 computed it (a literal copy)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _v1_rows(n: int) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        when = T0 + timedelta(seconds=seq)
        body: dict[str, object] = {
            "writer_id": "old",
            "seq": seq,
            "time": when.isoformat(timespec="microseconds"),
            "principal": "admin",
            "tenant": "acme",
            "action": "vault.register",
            "resource": f"cred_{seq}",
            "outcome": "ok",
            "request_id": f"r{seq}",
            "detail": '{"kind":"GCS_HMAC"}',
            "prev_hash": prev,
        }
        digest = _v1_hash(body)
        rows.append((*body.values(), digest, when))
        prev = digest
    return rows


def _store_before_0002(backend: str, url: str) -> Callable[[str], None]:
    """Create the v1 schema (migration 0001 only) with a chain of v1 rows; return a
    function running one SQL statement on the database."""
    dialect = "sqlite" if backend == "sqlite" else "postgres"
    first = load_migrations(dialect)[0]
    assert first.version == 1
    rows = _v1_rows(3)
    insert = (
        "INSERT INTO audit (writer_id, seq, time, principal, tenant, action, resource,"
        " outcome, request_id, detail_json, prev_hash, hash) VALUES ({})"
    )
    record = "INSERT INTO schema_migrations VALUES (1, 'initial', 'then')"
    ddl = (
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at text NOT NULL)"
    )
    if backend == "sqlite":
        path = url.removeprefix("sqlite://")
        with sqlite3.connect(path) as conn:
            for statement in split_sqlite_script(first.sql):
                conn.execute(statement)
            conn.execute(ddl)
            conn.execute(record)
            for r in rows:
                # SQLite stores fixed-width UTC text.
                when = r[-1].strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # type: ignore[attr-defined]
                conn.execute(insert.format(", ".join("?" * 12)), (*r[:2], when, *r[3:-1]))

        def run_sqlite(statement: str) -> None:
            with sqlite3.connect(path) as c:
                c.execute(statement)

        return run_sqlite
    with psycopg.connect(url, autocommit=True) as pconn:
        pconn.execute(first.sql)
        pconn.execute(ddl)
        pconn.execute(record)
        for r in rows:
            pconn.execute(insert.format(", ".join(["%s"] * 12)), (*r[:2], r[-1], *r[3:-1]))

    def run_pg(statement: str) -> None:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(statement)

    return run_pg


def test_a_chain_written_before_migration_0002_verifies_after_it(
    backend: str, store_url: str
) -> None:
    run = _store_before_0002(backend, store_url)
    store = open_store(store_url)  # applies 0002
    try:
        old = list(store.iter_audit_chain())
        assert [(r.v, r.event.status, r.event.keys) for r in old] == [(1, "", ())] * 3
        assert verify_chain(old).ok
        # The same writer goes on under the new hash version.
        log = AuditLog(store, FrozenClock(T0 + timedelta(minutes=1)), writer_id="old")
        try:
            log.record(_event("vault.get_credential", "cred_1", 9))
        finally:
            log.close()
        rows = list(store.iter_audit_chain())
        assert [r.v for r in rows] == [1, 1, 1, 2]
        assert verify_chain(rows).ok and verify_chain(rows).records_checked == 4
        assert [r.seq for r in store.query_audit(AuditFilter(outcome="ok"))] == [1, 2, 3, 4]
        # An old row cannot be made to claim fields it never had...
        run("UPDATE audit SET status = 'OK', reason = 'X' WHERE seq = 2")
        result = verify_chain(store.iter_audit_chain())
        assert not result.ok and result.first_bad_record == "old:2"
        run("UPDATE audit SET status = '', reason = '' WHERE seq = 2")
        assert verify_chain(store.iter_audit_chain()).ok
        # ... nor a new row be passed off as an old one.
        run("UPDATE audit SET v = 1 WHERE seq = 4")
        result = verify_chain(store.iter_audit_chain())
        assert not result.ok and result.first_bad_record == "old:4"
    finally:
        store.close()
