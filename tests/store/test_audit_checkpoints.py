"""The audit checkpoint store contract (migration 0003), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from store.conftest import T0, Factory

from bucketvault.store.base import AuditCheckpoint, Store


def _cp(writer: str, seq: int, kind: str = "head") -> AuditCheckpoint:
    return AuditCheckpoint(
        writer, seq, f"hash{seq}", kind, T0 + timedelta(seconds=seq), "ak_1", b"\x00sig\xff"
    )


def test_checkpoints_round_trip_in_order_and_duplicates_are_dropped(store: Store) -> None:
    store.add_audit_checkpoint(_cp("w", 5))
    store.add_audit_checkpoint(_cp("w", 2, "verified"))
    store.add_audit_checkpoint(_cp("w", 2))
    store.add_audit_checkpoint(_cp("v", 1))
    # The same (writer, seq, kind) again: the first one stays.
    store.add_audit_checkpoint(AuditCheckpoint("w", 5, "other", "head", T0, "ak_2", b"x"))
    assert store.list_audit_checkpoints("w") == [_cp("w", 2), _cp("w", 2, "verified"), _cp("w", 5)]
    assert store.list_audit_checkpoints("w", 3) == [_cp("w", 5)]
    got = store.list_audit_checkpoints("v")[0]
    assert got.time.utcoffset() == timedelta(0) and got.signature == b"\x00sig\xff"


def test_writers_include_those_left_with_checkpoints_only(store: Store, make: Factory) -> None:
    store.append_audit([make.audit("a", 1)])
    store.add_audit_checkpoint(_cp("b", 3))
    assert store.audit_writers() == ["a", "b"]


def test_writer_rows_from_a_seq_and_before_a_time(store: Store, make: Factory) -> None:
    store.append_audit([make.audit("w", s) for s in range(1, 1203)])
    store.append_audit([make.audit("x", 1)])
    assert [r.seq for r in store.iter_audit_writer("w", 1200)] == [1200, 1201, 1202]
    assert len(list(store.iter_audit_writer("w"))) == 1202
    # make.audit times are T0 + seq seconds.
    assert store.last_audit_seq_before("w", T0 + timedelta(seconds=10)) == 9
    assert store.last_audit_seq_before("w", T0) == 0


def test_prune_stores_the_anchor_and_drops_what_it_covers(store: Store, make: Factory) -> None:
    store.append_audit([make.audit("w", s) for s in range(1, 8)])
    store.append_audit([make.audit("x", 1)])
    for seq in (2, 4, 6):
        store.add_audit_checkpoint(_cp("w", seq))
    assert store.prune_audit(_cp("w", 4, "pruned")) == 4
    assert [r.seq for r in store.iter_audit_writer("w")] == [5, 6, 7]
    assert [(c.seq, c.kind) for c in store.list_audit_checkpoints("w")] == [
        (4, "head"),
        (4, "pruned"),
        (6, "head"),
    ]
    assert [r.seq for r in store.iter_audit_writer("x")] == [1]
