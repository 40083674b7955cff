"""The SQLite file's real faults, made for real: read-only (``chattr +i``, which stops root
too) and a full disk (a small tmpfs). While a fault lasts requests fail UNAVAILABLE and no
URL goes out without its audit record; once it is gone the service recovers by itself,
without a restart."""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bucketvault import errors
from bucketvault.audit import verify_chain
from bucketvault.errors import Unavailable
from bucketvault.store.base import AuditFilter
from bucketvault.store.sqlite import SqliteStore
from bucketvault.testing.fakes import local_providers, offline_providers
from bucketvault.testing.server import start_server

_DB = "bucketvault.sqlite"


def _now() -> datetime:
    return datetime.now(UTC)


def _chattr(flag: str, *paths: Path) -> bool:
    present = [str(p) for p in paths if p.exists()]
    try:
        done = subprocess.run(["chattr", flag, *present], capture_output=True, check=False)
    except OSError:
        return False
    return done.returncode == 0


@contextmanager
def immutable(db: Path) -> Iterator[None]:
    """The database and its WAL made immutable (the -shm stays: readers need it)."""
    files = (db, db.with_name(db.name + "-wal"))
    if shutil.which("chattr") is None or not _chattr("+i", *files):
        pytest.skip("chattr +i is not available here (needs root on ext4/xfs/btrfs)")
    try:
        yield
    finally:
        _chattr("-i", *files)


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(directory: Path) -> Path:
    """A file that takes every free byte of directory's filesystem."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError:
            pass
        try:
            while True:
                out.write(b"\0" * 512)
        except OSError:
            pass
    return filler


def test_a_connection_opened_while_the_file_was_read_only_writes_once_it_is_writable(
    tmp_path: Path,
) -> None:
    db = tmp_path / _DB
    store = SqliteStore(db)
    # One fresh thread: its connection is opened during the fault, then reused after.
    worker = ThreadPoolExecutor(1)
    try:
        store.ensure_external_id("warm", "bv-warm", _now())
        with immutable(db):
            with pytest.raises(Unavailable) as info:
                worker.submit(store.ensure_external_id, "acme", "bv-1", _now()).result()
            assert info.value.reason == "STORE_UNAVAILABLE"
        assert worker.submit(store.ensure_external_id, "acme", "bv-1", _now()).result() == "bv-1"
    finally:
        worker.shutdown()
        store.close()


def _hmac(i: int, t: int) -> dict[str, str]:
    return {"access_id": "GOOG1EXAMPLEHMAC", "secret": f"s-{t}-{i}"}


def test_registrations_fail_unavailable_while_read_only_then_all_succeed(
    tmp_path: Path,
) -> None:
    data = tmp_path / "bv"
    with start_server(tmp_path, data_dir=data, providers=offline_providers()) as srv:
        c = srv.client()
        # No audited call yet: the audit writer thread opens its connection in the fault.
        outcomes: Counter[str] = Counter()
        lock = threading.Lock()

        def burst(round_: int, threads: int, each: int) -> None:
            def loop(t: int) -> None:
                client = srv.client()
                for i in range(each):
                    try:
                        client.register_credential("acme", "GCS_HMAC", _hmac(round_ * 1000 + i, t))
                        key = "ok"
                    except errors.BucketVaultError as exc:
                        key = f"{exc.code.name}/{exc.reason}"
                    with lock:
                        outcomes[f"{round_}:{key}"] += 1

            workers = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join(timeout=60)

        with immutable(data / _DB):
            # Eight at once: the server opens connections on fresh worker threads now.
            burst(1, 8, 5)
        during = {k: v for k, v in outcomes.items() if k.startswith("1:")}
        assert sum(during.values()) == 40
        assert "1:ok" not in during, during
        assert all(k.split(":")[1].startswith("UNAVAILABLE/") for k in during), during
        # Writable again: every registration succeeds, on every worker thread, no restart.
        burst(2, 8, 5)
        after = {k: v for k, v in outcomes.items() if k.startswith("2:")}
        assert after == {"2:ok": 40}, after
        verdict = c.verify_audit()
        assert verdict.ok, verdict.detail


def test_disk_full_fails_unavailable_logs_sqlite_full_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with tmpfs(tmp_path / "small", "4m") as disk:
        data = disk / "bv"
        with start_server(tmp_path, data_dir=data, providers=local_providers()) as srv:
            c = srv.client()
            cred = c.register_credential("acme", "GCS_HMAC", _hmac(0, 0))
            mount = c.create_mount("acme", name="p", bucket="b", credential_id=cred.credential_id)
            c.sign_url("acme", mount.mount_id, "warm.jpg")
            filler = _fill(disk)
            urls: list[str] = []
            failures: Counter[str] = Counter()
            caplog.set_level(logging.ERROR, logger="bucketvault.audit.log")
            # The WAL reuses its own pages: write until it needs to grow.
            for i in range(3000):
                try:
                    c.register_credential("acme", "GCS_HMAC", _hmac(i, 9))
                    urls.append(c.sign_url("acme", mount.mount_id, f"k{i}.jpg").url)
                except errors.BucketVaultError as exc:
                    failures[f"{exc.code.name}/{exc.reason}"] += 1
                    if sum(failures.values()) >= 5:
                        break
            assert failures, "the disk never filled"
            assert set(failures) <= {"UNAVAILABLE/AUDIT_UNAVAILABLE"}, failures
            logged = [r.getMessage() for r in caplog.records if "audit commit failed" in r.msg]
            assert logged and all("SQLITE_FULL" in m for m in logged), logged
            assert not any("GOOG1" in m or "s-9-" in m for m in logged)
            # Space returns: the service recovers by itself.
            filler.unlink()
            for i in range(20):
                urls.append(c.sign_url("acme", mount.mount_id, f"after{i}.jpg").url)
            c.register_credential("acme", "GCS_HMAC", _hmac(0, 10))
            verdict = c.verify_audit()
            assert verdict.ok, verdict.detail
        store = SqliteStore(data / _DB)
        try:
            signed = store.query_audit(AuditFilter(action="signer.sign", outcome="ok"))
            # No URL without its record (the warm-up one is recorded too).
            assert len(list(signed)) == len(urls) + 1
            assert verify_chain(store.iter_audit_chain()).ok
        finally:
            store.close()
