"""RevokeCredential while signing and registration traffic runs against SQLite: the revoke
completes (the shred included) instead of failing SHRED_INCOMPLETE, and no copy of the
revoked envelope stays in the database file or its WAL."""

from __future__ import annotations

import threading
from pathlib import Path

from core.secrets_fixtures import sample

from bucketvault import errors
from bucketvault.errors import Unavailable
from bucketvault.protoenums import short_name
from bucketvault.store.sqlite import SqliteDialect
from bucketvault.testing.fakes import local_providers
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.v1 import vault_pb2

TENANT = "acme"
CALLERS = 8
REVOKES = 20


def _load(
    srv: RunningServer,
    mount_id: str,
    stop: threading.Event,
    seen: list[str],
    calls: threading.Semaphore,
) -> None:
    """Sign and register in a loop until stop; record any failure's reason."""
    client = srv.client()
    i = 0
    while not stop.is_set():
        i += 1
        calls.release()
        try:
            client.sign_url(TENANT, mount_id, f"k{i}.jpg")
            client.sign_urls(TENANT, mount_id, [f"b{i}-{j}.jpg" for j in range(50)])
            if i % 2 == 0:
                client.register_credential(TENANT, "GCS_HMAC", sample("GCS_HMAC"))
            if i % 5 == 0:
                list(client.list_prefix(TENANT, mount_id))
        except errors.BucketVaultError as exc:
            seen.append(f"{exc.code.name}/{exc.reason}")


def test_revokes_complete_under_signing_and_registration_load(tmp_path: Path) -> None:
    with start_server(tmp_path, providers=local_providers()) as srv:
        admin = srv.client()
        cred = admin.register_credential(TENANT, "GCS_HMAC", sample("GCS_HMAC"))
        mount_id = admin.create_mount(
            TENANT, name="m", bucket="b", credential_id=cred.credential_id
        ).mount_id
        victims = [
            admin.register_credential(TENANT, "GCS_HMAC", sample("GCS_HMAC")).credential_id
            for _ in range(REVOKES)
        ]
        stop = threading.Event()
        load_errors: list[str] = []
        calls = threading.Semaphore(0)
        callers = [
            threading.Thread(target=_load, args=(srv, mount_id, stop, load_errors, calls))
            for _ in range(CALLERS)
        ]
        outcomes: list[str] = []
        for t in callers:
            t.start()
        try:
            for cid in victims:
                # Each revoke only once the callers went round a few more times: it
                # meets the load at full speed, not a quiet moment before it starts.
                for _ in range(2 * CALLERS):
                    assert calls.acquire(timeout=30)
                try:
                    revoked = admin.revoke_credential(TENANT, cid, reason="load test")
                    outcomes.append(short_name(vault_pb2.CredentialState, revoked.state))
                except errors.BucketVaultError as exc:
                    outcomes.append(f"{exc.code.name}/{exc.reason}")
        finally:
            stop.set()
            for t in callers:
                t.join(30)
        assert outcomes == ["REVOKED"] * REVOKES, outcomes
        assert load_errors == [], load_errors[:5]
        for cid in victims:
            assert admin.get_credential(TENANT, cid).state == vault_pb2.CREDENTIAL_STATE_REVOKED


def test_a_shred_is_not_starved_by_back_to_back_writers(tmp_path: Path) -> None:
    """The mechanism behind SHRED_INCOMPLETE under load: writers that take the write
    lock one after another win every busy-handler poll of the checkpoint, for the whole
    busy timeout. The shred's gate makes them wait for it instead."""
    dialect = SqliteDialect(tmp_path / "load.sqlite", busy_timeout_ms=1000)
    with dialect.transaction() as tx:
        tx.execute("CREATE TABLE t (v BLOB)")
    stop = threading.Event()
    writes = threading.Semaphore(0)
    failures: list[BaseException] = []

    def writer() -> None:
        while not stop.is_set():
            try:
                with dialect.transaction() as tx:
                    tx.execute("INSERT INTO t VALUES (randomblob(100))")
                    stop.wait(0.02)  # a group commit's worth of work under the lock
            except BaseException as exc:  # collected: the test reports it
                failures.append(exc)
                return
            writes.release()

    writers = [threading.Thread(target=writer) for _ in range(4)]
    for t in writers:
        t.start()
    outcomes: list[str] = []
    try:
        for _ in range(5):
            for _ in range(8):  # the writers are at it, back to back
                assert writes.acquire(timeout=10)
            try:
                dialect.purge_freed()
                outcomes.append("ok")
            except Unavailable as exc:
                outcomes.append(exc.reason)
    finally:
        stop.set()
        for t in writers:
            t.join(10)
        dialect.close()
    assert outcomes == ["ok"] * 5, outcomes
    assert failures == [], failures
