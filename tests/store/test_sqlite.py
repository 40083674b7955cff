"""What only the SQLite backend promises: file mode, WAL, shredding on revoke, busy errors."""

from __future__ import annotations

import secrets
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bucketvault.errors import InvalidArgument, Unavailable
from bucketvault.store import open_store
from bucketvault.store.sqlite import SqliteStore

if TYPE_CHECKING:  # conftest is not importable under --import-mode=importlib
    from conftest import Factory

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "vault.sqlite"


@pytest.fixture
def sqlite_store(db_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(db_path)
    try:
        yield s
    finally:
        s.close()


def file_bytes(db_path: Path) -> bytes:
    """The database file and its WAL, as an attacker with the disk would read them."""
    wal = db_path.with_name(db_path.name + "-wal")
    return db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_files_are_private(sqlite_store: SqliteStore, db_path: Path, make: Factory) -> None:
    sqlite_store.insert_credential(make.credential())
    wal = db_path.with_name(db_path.name + "-wal")
    assert wal.exists()
    for path in (db_path, wal):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_wal_mode_is_persistent(sqlite_store: SqliteStore, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


@pytest.mark.parametrize("size", [64, 9000], ids=["in-page", "overflow-pages"])
def test_revoke_leaves_no_envelope_bytes_on_disk(
    sqlite_store: SqliteStore, db_path: Path, make: Factory, size: int
) -> None:
    marker = secrets.token_bytes(size)
    probe = marker[:32]
    victim = make.credential(envelope=marker)
    sqlite_store.insert_credential(victim)
    # Neighbours written before and after, so the page is shared and stays in use.
    sqlite_store.insert_credential(make.credential())
    assert probe in file_bytes(db_path), "the test must be able to see the envelope"

    cid = victim.credential.credential_id
    sqlite_store.revoke_credential("acme", cid, "ops", "compromised", T0)
    sqlite_store.insert_credential(make.credential())
    sqlite_store.append_audit([make.audit("w", 1)])

    assert probe not in file_bytes(db_path)
    wal = db_path.with_name(db_path.name + "-wal")
    assert not wal.exists() or probe not in wal.read_bytes()


def test_revoke_retry_finishes_a_busy_shred(db_path: Path, make: Factory) -> None:
    s = SqliteStore(db_path, busy_timeout_ms=50)
    try:
        marker = secrets.token_bytes(64)
        victim = make.credential(envelope=marker)
        s.insert_credential(victim)
        cid = victim.credential.credential_id
        # A long reader pins the old snapshot, so the WAL cannot be reset yet.
        reader = sqlite3.connect(db_path, isolation_level=None)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM credentials").fetchone()
            with pytest.raises(Unavailable) as err:
                s.revoke_credential("acme", cid, "ops", "x", T0)
            assert err.value.reason == "SHRED_INCOMPLETE"
            revoked = s.get_credential("acme", cid)
            assert revoked is not None and revoked.envelope is None
            reader.execute("COMMIT")
        finally:
            reader.close()
        again = s.revoke_credential("acme", cid, "ops", "x", T0)
        assert again == revoked
        assert marker not in file_bytes(db_path)
    finally:
        s.close()


def test_write_lock_held_elsewhere_is_unavailable(db_path: Path) -> None:
    s = SqliteStore(db_path, busy_timeout_ms=50)
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(Unavailable) as err:
            s.ensure_external_id("acme", "x", T0)
        assert err.value.reason == "STORE_BUSY"
        other.execute("ROLLBACK")
        assert s.ensure_external_id("acme", "x", T0) == "x"
    finally:
        other.close()
        s.close()


def test_open_store_urls(tmp_path: Path) -> None:
    s = open_store(f"sqlite://{tmp_path / 'a.sqlite'}")
    try:
        assert isinstance(s, SqliteStore)
        assert (tmp_path / "a.sqlite").exists()
    finally:
        s.close()
    for bad in ("sqlite://relative.db", "sqlite:///", "mysql://u:p@h/db", "a.sqlite"):
        with pytest.raises(InvalidArgument) as err:
            open_store(bad)
        assert err.value.reason == "INVALID_STORE_URL"
        assert "p@h" not in err.value.message


def _synchronous(store: object) -> int:
    dialect = store._dialect  # type: ignore[attr-defined]
    return int(dialect.fetch("PRAGMA synchronous", ())[0][0])


def test_synchronous_is_full_unless_the_url_asks_for_normal(tmp_path: Path) -> None:
    # FULL fsyncs the WAL at every commit (an answered audit record survives a power
    # loss); NORMAL is an operator's explicit trade.
    for url, expected in (
        (f"sqlite://{tmp_path / 'a.sqlite'}", 2),
        (f"sqlite://{tmp_path / 'b.sqlite'}?synchronous=full", 2),
        (f"sqlite://{tmp_path / 'c.sqlite'}?synchronous=NORMAL", 1),
    ):
        s = open_store(url)
        try:
            assert _synchronous(s) == expected, url
        finally:
            s.close()
    for bad in (
        "?synchronous=off",
        "?synchronous=",
        "?mode=ro",
        "?synchronous=full&synchronous=normal",
    ):
        with pytest.raises(InvalidArgument) as err:
            open_store(f"sqlite://{tmp_path / 'd.sqlite'}{bad}")
        assert err.value.reason == "INVALID_STORE_URL"
