"""Signed audit checkpoints through the real server: a cut tail, an edited or reordered
row, a forged checkpoint and a rewritten chain are all reported; incremental
verification re-hashes only new rows; retention archives and prunes without breaking
verification; exports verify offline against the pinned key."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from core.conftest import PRINCIPALS

from bucketvault.audit.chain import row_hash
from bucketvault.cli.main import main
from bucketvault.clock import FrozenClock
from bucketvault.store import open_store
from bucketvault.testing.fakes import offline_providers
from bucketvault.testing.server import RunningServer, start_server

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@contextmanager
def _server(
    tmp_path: Path, data_dir: Path, clock: FrozenClock | None = None, **env: str
) -> Iterator[RunningServer]:
    with start_server(
        tmp_path,
        data_dir=data_dir,
        clock=clock,
        env=env,
        principals=PRINCIPALS,
        providers=offline_providers(),
    ) as srv:
        yield srv


def _activity(server: RunningServer, n: int) -> None:
    """n audit rows (one per call)."""
    c = server.client()
    for _ in range(n):
        list(c.query_audit("acme", limit=1))


def _db(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(data_dir / "bucketvault.sqlite")


def _cli(
    server: RunningServer, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, object]]:
    token = str(server.data_dir / "admin.token")
    code = main(["--address", server.address, "--token-file", token, "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else {"raw": out}


def _offline(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main(["--json", "audit", "verify", *args])
    return code, json.loads(capsys.readouterr().out)


def _first_run(tmp_path: Path, rows: int = 6) -> tuple[Path, str]:
    """A run that writes rows and stops (the shutdown checkpoint signs its head)."""
    data_dir = tmp_path / "data"
    with _server(tmp_path, data_dir) as srv:
        assert srv.service is not None
        _activity(srv, rows)
        writer = srv.service.audit.writer_id
    return data_dir, writer


# -- tampering while the service is down -----------------------------------------------


def _delete_tail(db: sqlite3.Connection, writer: str) -> None:
    db.execute("DELETE FROM audit WHERE writer_id = ? AND seq > 4", (writer,))


def _edit_row(db: sqlite3.Connection, writer: str) -> None:
    db.execute("UPDATE audit SET resource = 'forged' WHERE writer_id = ? AND seq = 3", (writer,))


def _reorder(db: sqlite3.Connection, writer: str) -> None:
    for old, new in ((2, -1), (3, 2), (-1, 3)):
        db.execute("UPDATE audit SET seq = ? WHERE writer_id = ? AND seq = ?", (new, writer, old))


def _forge_signature(db: sqlite3.Connection, writer: str) -> None:
    (sig,) = db.execute(
        "SELECT signature FROM audit_checkpoints WHERE writer_id = ?", (writer,)
    ).fetchone()
    forged = bytes([sig[0] ^ 1]) + sig[1:]
    db.execute("UPDATE audit_checkpoints SET signature = ? WHERE writer_id = ?", (forged, writer))


def _rewrite_chain(db: sqlite3.Connection, writer: str) -> None:
    """Edit row 2 and recompute every hash after it: the chain alone verifies again."""
    (_, _, path) = db.execute("PRAGMA database_list").fetchone()
    store = open_store(f"sqlite:///{path}")
    try:
        rows = list(store.iter_audit_writer(writer, 1))
    finally:
        store.close()
    prev = rows[0].hash
    for row in rows[1:]:
        event = row.event
        if row.seq == 2:
            event = dataclasses.replace(event, resource="forged")
        changed = dataclasses.replace(row, prev_hash=prev, event=event, hash="")
        prev = row_hash(changed)
        db.execute(
            "UPDATE audit SET resource = ?, prev_hash = ?, hash = ?"
            " WHERE writer_id = ? AND seq = ?",
            (event.resource, changed.prev_hash, prev, writer, row.seq),
        )


TAMPERING: dict[str, tuple[Callable[[sqlite3.Connection, str], None], str, str]] = {
    # name: (tamper, expected first bad record suffix, words in the detail)
    "deleted tail": (_delete_tail, ":5", "missing tail: writer {w} has seq 4, checkpoint says 6"),
    "edited row": (_edit_row, ":3", "hash does not match"),
    "reordered rows": (_reorder, ":2", "prev_hash does not link"),
    "forged checkpoint": (_forge_signature, ":6", "bad signature"),
    "rewritten chain": (_rewrite_chain, ":6", "does not match the chain"),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_tampering_behind_a_checkpoint_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    tamper, where, detail = TAMPERING[name]
    data_dir, writer = _first_run(tmp_path)
    with _db(data_dir) as db:
        tamper(db, writer)
    with _server(tmp_path, data_dir) as srv:
        result = srv.client().verify_audit()
        assert not result.ok
        assert result.first_bad_record == writer + where
        assert detail.format(w=writer) in result.detail
        code, out = _cli(srv, capsys, "audit", "verify")
        assert code == 1 and out["ok"] is False
        code, out = _cli(srv, capsys, "audit", "verify", "--full")
        assert code == 1 and out["ok"] is False


def test_the_chain_alone_does_not_see_a_rewrite(tmp_path: Path) -> None:
    """Why checkpoints are signed: the rewritten chain links and hashes cleanly."""
    data_dir, writer = _first_run(tmp_path)
    with _db(data_dir) as db:
        _rewrite_chain(db, writer)
        db.execute("DELETE FROM audit_checkpoints")
    with _server(tmp_path, data_dir) as srv:
        result = srv.client().verify_audit()
        # Chain-only now, and the response says so: nothing signed covers these rows.
        assert result.ok and result.checkpoints_checked == 0
        assert result.records_after_checkpoint == result.records_checked


# -- incremental verification ------------------------------------------------------------


def test_incremental_verification_rehashes_only_new_rows(tmp_path: Path) -> None:
    with _server(tmp_path, tmp_path / "data") as srv:
        assert srv.service is not None
        c = srv.client()
        _activity(srv, 10)
        srv.service.checkpointer.checkpoint_now()
        first = c.verify_audit()
        assert first.ok and first.records_checked == 10 and first.checkpoints_checked == 1
        _activity(srv, 5)
        srv.service.checkpointer.checkpoint_now()
        again = c.verify_audit()
        # The verify call's own row and the five new ones; the mark covers the first ten.
        assert again.ok and again.records_checked == 6 and not again.full
        full = c.verify_audit(full=True)
        assert full.ok and full.full and full.records_checked == 17
        # The row after the newest checkpoint (the second verify call's) has the chain alone.
        assert full.records_after_checkpoint == 1


def test_incremental_verification_sees_a_tail_cut_after_a_verification(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with _server(tmp_path, data_dir) as srv:
        assert srv.service is not None
        writer = srv.service.audit.writer_id
        _activity(srv, 6)
        srv.service.checkpointer.checkpoint_now()
        assert srv.client().verify_audit().ok  # signs a "verified" mark at seq 6
    with _db(data_dir) as db:
        # Cut every row from seq 5 on, and the head checkpoints covering them.
        db.execute("DELETE FROM audit WHERE writer_id = ? AND seq >= 5", (writer,))
        db.execute("DELETE FROM audit_checkpoints WHERE kind = 'head'")
    with _server(tmp_path, data_dir) as srv:
        result = srv.client().verify_audit()
        assert not result.ok
        assert f"missing tail: writer {writer} has seq 4, checkpoint says 6" in result.detail


def test_a_timer_checkpoints_while_the_chain_moves(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    with _server(tmp_path, tmp_path / "data", clock) as srv:
        assert srv.service is not None
        _activity(srv, 3)
        clock.advance(61)
        assert srv.service.checkpointer.tick() is not None
        assert srv.service.checkpointer.tick() is None  # nothing moved since
        _activity(srv, 1)
        assert srv.service.checkpointer.tick() is None  # moved, but within the interval


# -- retention, export, offline verification ----------------------------------------------


def test_prune_keeps_the_remainder_verifiable_and_the_archive_verifies_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FrozenClock(T0)
    data_dir = tmp_path / "data"
    archive_dir = tmp_path / "archive"
    env = {
        "BUCKETVAULT_AUDIT_RETENTION_DAYS": "1",
        "BUCKETVAULT_AUDIT_ARCHIVE_DIR": str(archive_dir),
    }
    with _server(tmp_path, data_dir, clock, **env) as srv:
        _activity(srv, 8)
        old_writer = srv.service.audit.writer_id if srv.service else ""
    clock.advance(timedelta(days=2))
    with _server(tmp_path, data_dir, clock, **env) as srv:
        assert srv.service is not None and srv.service.retention is not None
        _activity(srv, 3)
        report = srv.service.retention.run()
        assert report.refused == "" and report.records_pruned == 8
        assert report.archive is not None and report.archive.stat().st_mode & 0o777 == 0o600
        with _db(data_dir) as db:
            left = db.execute(
                "SELECT COUNT(*) FROM audit WHERE writer_id = ?", (old_writer,)
            ).fetchone()
        assert left == (0,)
        c = srv.client()
        assert c.verify_audit(full=True).ok
        assert c.verify_audit().ok
        key_file = tmp_path / "audit.pub"
        key_file.write_text(c.audit_key().public_key_pem)
        archive = report.archive

    code, out = _offline(capsys, "--file", str(archive), "--public-key", str(key_file))
    assert code == 0 and out["ok"] is True and out["records_checked"] == 8
    assert out["key_pinned"] is True and out["unanchored"] == []

    lines = archive.read_text().splitlines()
    edited = [line.replace('"outcome": "ok"', '"outcome": "denied"', 1) for line in lines]
    assert edited != lines
    archive.write_text("\n".join(edited) + "\n")
    code, out = _offline(capsys, "--file", str(archive), "--public-key", str(key_file))
    assert code == 1 and out["ok"] is False and "hash" in str(out["detail"])


def test_rows_deleted_past_the_prune_anchor_are_a_gap(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    data_dir = tmp_path / "data"
    env = {
        "BUCKETVAULT_AUDIT_RETENTION_DAYS": "1",
        "BUCKETVAULT_AUDIT_ARCHIVE_DIR": str(tmp_path / "archive"),
    }
    with _server(tmp_path, data_dir, clock, **env) as srv:
        _activity(srv, 4)
    clock.advance(timedelta(days=2))
    with _server(tmp_path, data_dir, clock, **env) as srv:
        assert srv.service is not None and srv.service.retention is not None
        writer = srv.service.audit.writer_id
        _activity(srv, 4)
        srv.service.checkpointer.checkpoint_now()
        clock.advance(timedelta(days=2))
        srv.service.retention.run()  # prunes both writers through their checkpoints
        _activity(srv, 3)
        assert srv.client().verify_audit(full=True).ok
        with _db(data_dir) as db:
            (first,) = db.execute(
                "SELECT MIN(seq) FROM audit WHERE writer_id = ?", (writer,)
            ).fetchone()
            db.execute("DELETE FROM audit WHERE writer_id = ? AND seq = ?", (writer, first))
        result = srv.client().verify_audit(full=True)
        assert not result.ok and "rows missing" in result.detail


def test_export_verifies_offline_and_an_edited_line_does_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FrozenClock(T0)
    with _server(tmp_path, tmp_path / "data", clock) as srv:
        assert srv.service is not None
        _activity(srv, 5)
        srv.service.checkpointer.checkpoint_now()
        clock.advance(10)
        _activity(srv, 2)
        code, out = _cli(srv, capsys, "audit", "public-key")
        key_file = tmp_path / "audit.pub"
        key_file.write_text(str(out["raw"]))
        token = str(srv.data_dir / "admin.token")
        code = main(
            ["--address", srv.address, "--token-file", token, "audit", "export",
             "--since", (T0 - timedelta(hours=1)).isoformat()]
        )  # fmt: skip
        export = tmp_path / "export.jsonl"
        export.write_text(capsys.readouterr().out)
        assert code == 0
    code, out = _offline(capsys, "--file", str(export), "--public-key", str(key_file))
    assert code == 0 and out["ok"] is True
    # 7 queries, the public-key call and the export itself: every RPC leaves a record.
    assert out["records_checked"] == 9 and out["checkpoints_checked"] == 1

    original = export.read_text()
    lines = original.splitlines()
    record = next(i for i, line in enumerate(lines) if '"seq": 2,' in line)
    lines[record] = lines[record].replace('"tenant": "acme"', '"tenant": "globex"')
    export.write_text("\n".join(lines) + "\n")
    code, out = _offline(capsys, "--file", str(export), "--public-key", str(key_file))
    assert code == 1 and out["ok"] is False

    # Another key pinned: the checkpoints no longer verify.
    other = tmp_path / "other.pub"
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bucketvault.audit.signing import public_pem

    other.write_text(public_pem(Ed25519PrivateKey.generate().public_key()))
    export.write_text(original)
    code, out = _offline(capsys, "--file", str(export), "--public-key", str(other))
    assert code == 1 and out["ok"] is False
