"""The Store contract, run against both backends (see conftest: sqlite and postgres)."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, TypeVar

import psycopg
import pytest

from bucketvault.errors import (
    Aborted,
    AlreadyExists,
    BucketVaultError,
    Internal,
    NotFound,
    Unavailable,
)
from bucketvault.models import CredentialState
from bucketvault.store import open_store
from bucketvault.store.base import AuditFilter, LinkRevocation, Store
from bucketvault.store.migrations import apply_migrations, load_migrations

if TYPE_CHECKING:  # conftest is not importable under --import-mode=importlib
    from conftest import Factory

R = TypeVar("R")
# Same instant as conftest.T0, the factories' default timestamp.
T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def race(n: int, fn: Callable[[int], R]) -> list[R | BaseException]:
    """Run fn(i) in n threads released together; results or exceptions, in order."""
    barrier = threading.Barrier(n)

    def run(i: int) -> R | BaseException:
        barrier.wait()
        try:
            return fn(i)
        except BaseException as exc:
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


# -- service keys -------------------------------------------------------------


def test_service_keys_round_trip_and_order(store: Store, make: Factory) -> None:
    newer = make.service_key(created_at=T0 + timedelta(hours=1))
    older = make.service_key(created_at=T0)
    retired = make.service_key(created_at=T0 - timedelta(days=1))
    retired = type(retired)(**{**retired.__dict__, "retired_at": T0})
    other = make.service_key("fingerprint")
    for k in (newer, older, retired, other):
        store.add_service_key(k)

    assert store.get_service_key(older.key_id) == older
    assert store.get_service_key("missing") is None
    assert store.list_service_keys("registration") == [retired, older, newer]
    assert store.list_service_keys("fingerprint") == [other]
    got = store.get_service_key(retired.key_id)
    assert got is not None and got.retired_at == T0 and got.envelope == retired.envelope


def test_service_key_duplicate_is_already_exists(store: Store, make: Factory) -> None:
    k = make.service_key()
    store.add_service_key(k)
    with pytest.raises(AlreadyExists) as err:
        store.add_service_key(k)
    assert err.value.reason == "SERVICE_KEY_EXISTS"


def test_service_key_envelope_cas(store: Store, make: Factory) -> None:
    k = make.service_key()
    store.add_service_key(k)
    assert store.replace_service_key_envelope(k.key_id, b"not-the-current", b"new") is False
    assert store.replace_service_key_envelope(k.key_id, k.envelope, b"new") is True
    assert store.replace_service_key_envelope(k.key_id, k.envelope, b"newer") is False
    got = store.get_service_key(k.key_id)
    assert got is not None and got.envelope == b"new"


# -- tenants ------------------------------------------------------------------


def test_external_id_fixed_on_first_call(store: Store) -> None:
    assert store.ensure_external_id("acme", "ext-1", T0) == "ext-1"
    assert store.ensure_external_id("acme", "ext-2", T0) == "ext-1"
    assert store.ensure_external_id("globex", "ext-3", T0) == "ext-3"


def test_external_id_concurrent_first_calls_agree(store: Store) -> None:
    results = race(8, lambda i: store.ensure_external_id("acme", f"cand-{i}", T0))
    assert all(isinstance(r, str) for r in results), results
    assert len(set(results)) == 1
    assert store.ensure_external_id("acme", "late", T0) == results[0]


# -- credentials --------------------------------------------------------------


def test_credential_round_trip(store: Store, make: Factory) -> None:
    stored = make.credential(idempotency_key="idem-1", request_hash="rh")
    assert store.insert_credential(stored) == stored
    got = store.get_credential("acme", stored.credential.credential_id)
    assert got == stored
    assert got is not None
    assert got.envelope == stored.envelope
    assert got.credential.created_at.tzinfo is not None
    assert got.credential.created_at.utcoffset() == timedelta(0)
    assert got.credential.created_at.microsecond == 123456
    assert dict(got.credential.metadata) == dict(stored.credential.metadata)
    assert got.credential.warnings == stored.credential.warnings
    assert store.find_by_idempotency_key("acme", "idem-1") == stored
    assert store.find_by_idempotency_key("acme", "other") is None
    assert store.find_by_idempotency_key("acme", "") is None


def test_datetimes_come_back_utc_whatever_the_input_offset(store: Store, make: Factory) -> None:
    plus2 = T0.astimezone(timezone(timedelta(hours=2)))
    stored = make.credential(created_at=plus2)
    store.insert_credential(stored)
    got = store.get_credential("acme", stored.credential.credential_id)
    assert got is not None
    assert got.credential.created_at == T0
    assert got.credential.created_at.utcoffset() == timedelta(0)


def test_naive_datetime_is_refused(store: Store, make: Factory) -> None:
    with pytest.raises(Internal):
        store.insert_credential(make.credential(created_at=datetime(2026, 1, 1)))


def test_idempotent_insert_returns_existing_unchanged(store: Store, make: Factory) -> None:
    first = make.credential(idempotency_key="k", request_hash="first")
    second = make.credential(idempotency_key="k", request_hash="second")
    assert store.insert_credential(first) == first
    again = store.insert_credential(second)
    assert again == first
    assert again.request_hash == "first"
    assert store.get_credential("acme", second.credential.credential_id) is None
    # The same key in another tenant is another request.
    other = make.credential("globex", idempotency_key="k")
    assert store.insert_credential(other) == other
    # Empty keys never collide.
    a, b = make.credential(), make.credential()
    assert store.insert_credential(a) == a
    assert store.insert_credential(b) == b
    assert len(store.list_credentials("acme", "", 0)) == 3


def test_idempotent_insert_race_yields_one_credential(store: Store, make: Factory) -> None:
    candidates = [make.credential(idempotency_key="race") for _ in range(8)]
    results = race(8, lambda i: store.insert_credential(candidates[i]))
    ids = {r.credential.credential_id for r in results if not isinstance(r, BaseException)}
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert len(ids) == 1
    assert [s.credential.credential_id for s in store.list_credentials("acme", "", 0)] == list(ids)


def test_duplicate_credential_id_is_already_exists(store: Store, make: Factory) -> None:
    stored = make.credential()
    store.insert_credential(stored)
    with pytest.raises(AlreadyExists) as err:
        store.insert_credential(make.credential(credential_id=stored.credential.credential_id))
    assert err.value.reason == "CREDENTIAL_EXISTS"


def test_list_credentials_pages(store: Store, make: Factory) -> None:
    ids = [f"cred-{i:02d}" for i in (5, 1, 4, 2, 3)]
    for cid in ids:
        store.insert_credential(make.credential(credential_id=cid))
    store.insert_credential(make.credential("globex", credential_id="cred-00"))

    pages: list[list[str]] = []
    after = ""
    while True:
        page = store.list_credentials("acme", after, 2)
        if not page:
            break
        pages.append([s.credential.credential_id for s in page])
        after = page[-1].credential.credential_id
    assert pages == [["cred-01", "cred-02"], ["cred-03", "cred-04"], ["cred-05"]]
    everything = store.list_credentials("acme", "", 0)
    assert [s.credential.credential_id for s in everything] == sorted(ids)
    assert [s.credential.credential_id for s in store.list_credentials("globex", "", 10)] == [
        "cred-00"
    ]


def test_revoke_shreds_and_is_idempotent(store: Store, make: Factory) -> None:
    stored = make.credential()
    cid = stored.credential.credential_id
    store.insert_credential(stored)
    later = T0 + timedelta(days=3)

    revoked = store.revoke_credential("acme", cid, "ops@acme", "rotated", later)
    assert revoked is not None
    assert revoked.envelope is None
    assert revoked.credential.state is CredentialState.REVOKED
    assert revoked.credential.revoked_at == later
    assert revoked.credential.revoked_by == "ops@acme"
    assert revoked.credential.revoke_reason == "rotated"
    assert store.get_credential("acme", cid) == revoked

    again = store.revoke_credential("acme", cid, "someone-else", "again", later + timedelta(1))
    assert again == revoked
    assert store.revoke_credential("acme", "missing", "ops", "x", later) is None
    assert cid not in {i for _, i, _ in store.iter_envelopes()}
    assert store.replace_credential_envelope(cid, stored.envelope or b"", b"new") is False


def test_credential_envelope_cas(store: Store, make: Factory) -> None:
    stored = make.credential()
    cid = stored.credential.credential_id
    store.insert_credential(stored)
    assert store.replace_credential_envelope(cid, b"stale", b"new") is False
    assert store.replace_credential_envelope(cid, stored.envelope or b"", b"new") is True
    got = store.get_credential("acme", cid)
    assert got is not None and got.envelope == b"new"


def test_iter_envelopes_pages_through_everything(store: Store, make: Factory) -> None:
    creds = [make.credential(tenant=f"t{i % 3}") for i in range(503)]
    for c in creds:
        store.insert_credential(c)
    key = make.service_key()
    store.add_service_key(key)
    store.revoke_credential(
        creds[0].credential.tenant, creds[0].credential.credential_id, "o", "r", T0
    )

    seen = list(store.iter_envelopes())
    expected = {("credential", c.credential.credential_id, c.envelope) for c in creds[1:]}
    expected.add(("service_key", key.key_id, key.envelope))
    assert len(seen) == len(expected)
    assert set(seen) == expected


def test_store_refuses_revoked_state_with_envelope_without_leaking_it(
    store: Store, make: Factory
) -> None:
    # A REVOKED row must not carry an envelope (schema CHECK); the error says nothing of it.
    marker = bytes.fromhex("deadbeef" * 16)
    bad = make.credential(envelope=marker, state=CredentialState.REVOKED)
    with pytest.raises(BucketVaultError) as err:
        store.insert_credential(bad)
    chain: list[BaseException] = []
    exc: BaseException | None = err.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    text = " ".join(f"{e!s} {e!r}" for e in chain)
    assert "deadbeef" not in text.lower()
    assert "\\xde\\xad" not in text
    assert store.get_credential("acme", bad.credential.credential_id) is None


# -- mounts -------------------------------------------------------------------


def test_mount_round_trip_and_pages(store: Store, make: Factory) -> None:
    cred = make.credential()
    store.insert_credential(cred)
    cid = cred.credential.credential_id
    mounts = [make.mount(cid, mount_id=f"m-{i}") for i in (3, 1, 2)]
    for m in mounts:
        store.insert_mount(m)
    assert store.get_mount("acme", "m-1") == mounts[1]
    assert store.get_mount("acme", "nope") is None
    assert [m.mount_id for m in store.list_mounts("acme", "", 2)] == ["m-1", "m-2"]
    assert [m.mount_id for m in store.list_mounts("acme", "m-2", 2)] == ["m-3"]
    assert store.list_mounts("acme", "", 0) == sorted(mounts, key=lambda m: m.mount_id)
    assert store.list_mounts("globex", "", 0) == []


def test_mounts_for_bucket_are_the_tenants_on_that_bucket(store: Store, make: Factory) -> None:
    acme, globex = make.credential(), make.credential("globex")
    store.insert_credential(acme)
    store.insert_credential(globex)
    a = acme.credential.credential_id
    on = [
        dataclasses.replace(make.mount(a, mount_id=f"b-{i}"), prefix=p)
        for i, p in ((2, ""), (1, "x/"))
    ]
    for m in (*on, dataclasses.replace(make.mount(a), bucket="other")):
        store.insert_mount(m)
    store.insert_mount(make.mount(globex.credential.credential_id, "globex"))
    assert store.mounts_for_bucket("acme", "images") == sorted(on, key=lambda m: m.mount_id)
    assert store.mounts_for_bucket("acme", "nope") == []
    assert [m.tenant for m in store.mounts_for_bucket("globex", "images")] == ["globex"]


def test_mount_name_taken_per_tenant(store: Store, make: Factory) -> None:
    acme, globex = make.credential(), make.credential("globex")
    store.insert_credential(acme)
    store.insert_credential(globex)
    store.insert_mount(make.mount(acme.credential.credential_id, name="photos"))
    with pytest.raises(AlreadyExists) as err:
        store.insert_mount(make.mount(acme.credential.credential_id, name="photos"))
    assert err.value.reason == "MOUNT_NAME_TAKEN"
    # Another tenant may use the name.
    store.insert_mount(make.mount(globex.credential.credential_id, "globex", name="photos"))
    assert len(store.list_mounts("globex", "", 0)) == 1


def test_mount_duplicate_id_is_already_exists(store: Store, make: Factory) -> None:
    cred = make.credential()
    store.insert_credential(cred)
    m = make.mount(cred.credential.credential_id)
    store.insert_mount(m)
    with pytest.raises(AlreadyExists) as err:
        store.insert_mount(make.mount(cred.credential.credential_id, mount_id=m.mount_id))
    assert err.value.reason == "MOUNT_EXISTS"


def test_mount_cannot_use_another_tenants_credential(store: Store, make: Factory) -> None:
    globex = make.credential("globex")
    store.insert_credential(globex)
    with pytest.raises(NotFound) as err:
        store.insert_mount(make.mount(globex.credential.credential_id, "acme"))
    assert err.value.reason == "CREDENTIAL_NOT_FOUND"
    assert store.list_mounts("acme", "", 0) == []


def test_rebind_cas(store: Store, make: Factory) -> None:
    old, new = make.credential(), make.credential()
    store.insert_credential(old)
    store.insert_credential(new)
    m = make.mount(old.credential.credential_id)
    store.insert_mount(m)
    later = T0 + timedelta(hours=1)

    rebound = store.rebind_mount("acme", m.mount_id, new.credential.credential_id, 1, later)
    assert rebound.credential_id == new.credential.credential_id
    assert rebound.version == 2
    assert rebound.updated_at == later
    assert rebound.created_at == m.created_at
    assert store.get_mount("acme", m.mount_id) == rebound

    with pytest.raises(Aborted) as stale:
        store.rebind_mount("acme", m.mount_id, old.credential.credential_id, 1, later)
    assert stale.value.reason == "VERSION_MISMATCH"
    with pytest.raises(NotFound) as missing:
        store.rebind_mount("acme", "nope", old.credential.credential_id, 2, later)
    assert missing.value.reason == "MOUNT_NOT_FOUND"
    with pytest.raises(NotFound) as no_cred:
        store.rebind_mount("acme", m.mount_id, "no-such-credential", 2, later)
    assert no_cred.value.reason == "CREDENTIAL_NOT_FOUND"
    assert store.get_mount("acme", m.mount_id) == rebound


def test_concurrent_rebinds_exactly_one_wins(store: Store, make: Factory) -> None:
    creds = [make.credential() for _ in range(9)]
    for c in creds:
        store.insert_credential(c)
    m = make.mount(creds[0].credential.credential_id)
    store.insert_mount(m)

    results = race(
        8,
        lambda i: store.rebind_mount(
            "acme", m.mount_id, creds[i + 1].credential.credential_id, 1, T0
        ),
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, Aborted) and r.reason == "VERSION_MISMATCH" for r in losers), losers
    final = store.get_mount("acme", m.mount_id)
    assert final == winners[0]
    assert final is not None and final.version == 2


# -- tenant isolation ---------------------------------------------------------


def test_other_tenants_ids_are_not_found(store: Store, make: Factory) -> None:
    cred = make.credential("acme", idempotency_key="k")
    store.insert_credential(cred)
    cid = cred.credential.credential_id
    m = make.mount(cid)
    store.insert_mount(m)

    assert store.get_credential("globex", cid) is None
    assert store.find_by_idempotency_key("globex", "k") is None
    assert store.list_credentials("globex", "", 0) == []
    assert store.revoke_credential("globex", cid, "evil", "x", T0) is None
    assert store.get_mount("globex", m.mount_id) is None
    assert store.list_mounts("globex", "", 0) == []
    with pytest.raises(NotFound):
        store.rebind_mount("globex", m.mount_id, cid, 1, T0)
    # Nothing changed for the owner.
    assert store.get_credential("acme", cid) == cred
    assert store.get_mount("acme", m.mount_id) == m


# -- audit --------------------------------------------------------------------


def test_audit_append_head_and_chain(store: Store, make: Factory) -> None:
    assert store.audit_head("w1") is None
    rows_w1 = [make.audit("w1", s) for s in (1, 2, 3)]
    rows_w0 = [make.audit("w0", s) for s in (1, 2)]
    store.append_audit(rows_w1)
    store.append_audit(rows_w0)
    store.append_audit([])
    assert store.audit_head("w1") == rows_w1[-1]
    assert store.audit_head("w0") == rows_w0[-1]
    assert list(store.iter_audit_chain()) == rows_w0 + rows_w1
    got = store.audit_head("w1")
    assert got is not None and got.event.detail_json == '{"keys": 1,  "z": "ü"}'
    assert got.event.keys == ("img/a.jpg", "img/ü b.jpg") and got.v == 2


def test_audit_batch_is_all_or_nothing(store: Store, make: Factory) -> None:
    store.append_audit([make.audit("w", 1)])
    # Duplicate inside the batch.
    with pytest.raises(Aborted) as err:
        store.append_audit([make.audit("w", 2), make.audit("w", 3), make.audit("w", 2)])
    assert err.value.reason == "AUDIT_SEQ_CONFLICT"
    # Duplicate of a stored row.
    with pytest.raises(Aborted):
        store.append_audit([make.audit("w", 4), make.audit("w", 1)])
    assert [r.seq for r in store.iter_audit_chain()] == [1]
    head = store.audit_head("w")
    assert head is not None and head.seq == 1


def test_audit_row_breaking_a_non_key_rule_is_a_store_error_not_a_conflict(
    store: Store, make: Factory
) -> None:
    # A NOT NULL violation is a bug, not a lost race: answering AUDIT_SEQ_CONFLICT would
    # send the writer re-reading its head and retrying the same bad row.
    store.append_audit([make.audit("w", 1)])
    row = make.audit("w", 2)
    bad = dataclasses.replace(row, event=dataclasses.replace(row.event, principal=None))  # type: ignore[arg-type]
    with pytest.raises(Internal) as err:
        store.append_audit([bad])
    assert err.value.reason == "STORE_ERROR"
    # No backend chains the driver's exception: its message may quote the row.
    assert err.value.__cause__ is None and err.value.__context__ is None
    assert [r.seq for r in store.iter_audit_chain()] == [1]


def test_audit_query_filters_and_order(store: Store, make: Factory) -> None:
    t = T0
    rows = [
        make.audit("b", 1, time=t, tenant="acme", action="SignURL", principal="p1"),
        make.audit("a", 1, time=t, tenant="acme", action="RevokeCredential", principal="p2"),
        make.audit("a", 2, time=t + timedelta(seconds=1), tenant="globex", principal="p1"),
        make.audit("b", 2, time=t + timedelta(seconds=2), tenant="acme", principal="p1"),
        make.audit(
            "a", 3, time=t + timedelta(seconds=3), tenant="acme", principal="p2", outcome="denied"
        ),
    ]
    store.append_audit([rows[0], rows[3]])
    store.append_audit([rows[1], rows[2], rows[4]])

    def q(**kw: object) -> list[tuple[str, int]]:
        return [(r.writer_id, r.seq) for r in store.query_audit(AuditFilter(**kw))]  # type: ignore[arg-type]

    assert q() == [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3)]
    assert q(tenant="acme") == [("a", 1), ("b", 1), ("b", 2), ("a", 3)]
    assert q(action="RevokeCredential") == [("a", 1)]
    assert q(principal="p1", tenant="acme") == [("b", 1), ("b", 2)]
    # since inclusive, until exclusive.
    assert q(since=t + timedelta(seconds=1), until=t + timedelta(seconds=3)) == [
        ("a", 2),
        ("b", 2),
    ]
    assert q(limit=2) == [("a", 1), ("b", 1)]
    assert q(tenant="nobody") == []
    assert q(outcome="denied") == [("a", 3)]
    assert q(outcome="ok", principal="p2") == [("a", 1)]
    got = next(iter(store.query_audit(AuditFilter(tenant="globex"))))
    assert got == rows[2]
    assert got.event.time.utcoffset() == timedelta(0)
    assert got.event.expires_at is not None and got.event.expires_at.utcoffset() == timedelta(0)


def test_audit_query_pages_past_one_batch(store: Store, make: Factory) -> None:
    # 1203 rows, several sharing a timestamp, so the keyset cursor must use writer and seq.
    rows = [
        make.audit(f"w{i % 3}", i, time=T0 + timedelta(milliseconds=i // 7)) for i in range(1203)
    ]
    store.append_audit(rows)
    expected = sorted(rows, key=lambda r: (r.event.time, r.writer_id, r.seq))
    assert list(store.query_audit(AuditFilter())) == expected
    assert list(store.query_audit(AuditFilter(limit=700))) == expected[:700]
    chain = list(store.iter_audit_chain())
    assert chain == sorted(rows, key=lambda r: (r.writer_id, r.seq))


# -- lifecycle ----------------------------------------------------------------


def test_closed_store_is_unavailable(store: Store) -> None:
    store.close()
    with pytest.raises(Unavailable) as err:
        store.get_mount("acme", "m")
    assert err.value.reason == "STORE_CLOSED"


def test_reopening_applies_no_migration_and_keeps_data(
    backend: str, store_url: str, store: Store, make: Factory
) -> None:

    cred = make.credential()
    store.insert_credential(cred)
    reopened = open_store(store_url)
    try:
        assert reopened.get_credential("acme", cred.credential.credential_id) == cred
    finally:
        reopened.close()

    versions = [m.version for m in load_migrations("sqlite" if backend == "sqlite" else "postgres")]
    assert versions and versions == sorted(versions)
    if backend == "sqlite":
        conn = sqlite3.connect(store_url.removeprefix("sqlite://"), isolation_level=None)
        try:
            assert apply_migrations(conn, "sqlite") == []
            rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version")
            assert [r[0] for r in rows] == versions
        finally:
            conn.close()
    else:
        with psycopg.connect(store_url, autocommit=True) as pconn:
            assert apply_migrations(pconn, "postgres") == []
            prows = pconn.execute("SELECT version FROM schema_migrations ORDER BY version")
            assert [r[0] for r in prows] == versions


def test_timestamps_keep_order_across_offsets(store: Store, make: Factory) -> None:
    # Stored text (SQLite) must sort as time: an earlier instant written with a larger
    # local clock reading must still come first.
    early_local = (T0 - timedelta(hours=1)).astimezone(timezone(timedelta(hours=5)))
    store.append_audit([make.audit("w", 1, time=T0), make.audit("w", 2, time=early_local)])
    assert [r.seq for r in store.query_audit(AuditFilter())] == [2, 1]
    assert [r.seq for r in store.query_audit(AuditFilter(since=T0))] == [1]


def test_created_at_is_utc_datetime(store: Store, make: Factory) -> None:
    k = make.service_key(created_at=datetime(2030, 5, 6, 7, 8, 9, 1, tzinfo=UTC))
    store.add_service_key(k)
    got = store.get_service_key(k.key_id)
    assert got is not None
    assert got.created_at == datetime(2030, 5, 6, 7, 8, 9, 1, tzinfo=UTC)
    assert got.created_at.utcoffset() == timedelta(0)


def test_iter_live_credentials_pages_through_every_tenant(store: Store, make: Factory) -> None:
    creds = [make.credential(tenant=f"t{i % 3}") for i in range(503)]
    for c in creds:
        store.insert_credential(c)
    first = creds[0].credential
    store.revoke_credential(first.tenant, first.credential_id, "o", "r", T0)

    seen = list(store.iter_live_credentials())
    assert [s.credential.credential_id for s in seen] == sorted(
        c.credential.credential_id for c in creds[1:]
    )
    assert {s.envelope for s in seen} == {c.envelope for c in creds[1:]}


def test_retire_service_key_sets_the_time_once(store: Store, make: Factory) -> None:
    k = make.service_key()
    store.add_service_key(k)
    later = T0 + timedelta(days=7)
    assert store.retire_service_key(k.key_id, later) is True
    assert store.retire_service_key(k.key_id, T0) is False
    got = store.get_service_key(k.key_id)
    assert got is not None and got.retired_at == later
    assert store.retire_service_key("no-such-key", T0) is False


def test_link_revocations_keep_the_first_and_name_the_mount(store: Store) -> None:
    when = datetime(2026, 12, 1, tzinfo=UTC)
    first = LinkRevocation("lnk_1", "acme", "mnt_a", when, "alice", "leaked")
    again = LinkRevocation("lnk_1", "acme", "mnt_a", when + timedelta(hours=1), "bob")
    other = LinkRevocation("lnk_1", "acme", "mnt_b", when, "mallory")
    kept = [
        store.audit_batch(lambda b, r=r: b.apply(lambda w: w.revoke_link(r)))
        for r in (first, again, other)
    ]
    assert kept == [first, first, other]
    assert store.link_revocations() == {("acme", "mnt_a", "lnk_1"), ("acme", "mnt_b", "lnk_1")}
