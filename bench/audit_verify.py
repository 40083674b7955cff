"""Audit verification speed: 20,000 chained rows on SQLite, signed checkpoints every 1,000.

Prints seconds for a full verification, an incremental one after 1,000 new rows, and an
offline check of the same rows as an archive file. A benchmark, not a test.

    PYTHONPATH=src .venv/bin/python bench/audit_verify.py
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bucketvault.audit import archive
from bucketvault.audit.chain import GENESIS, row_hash
from bucketvault.audit.signing import HEAD, AuditSigner, TrustedKeys
from bucketvault.audit.verifier import AuditVerifier
from bucketvault.clock import FrozenClock
from bucketvault.store.base import AuditRow
from bucketvault.store.sqlite import SqliteStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _rows(writer: str, first: int, count: int, prev: str) -> list[AuditRow]:
    rows = []
    for seq in range(first, first + count):
        row = AuditRow(
            writer, seq, T0 + timedelta(milliseconds=seq), "svc", "acme", "signer.sign",
            f"mounts/m/{seq}", "ok", f"req-{seq}", '{"keys":"1"}', prev, "",
        )  # fmt: skip
        row = dataclasses.replace(row, hash=row_hash(row))
        rows.append(row)
        prev = row.hash
    return rows


def main(total: int = 20_000, every: int = 1_000) -> None:
    signer = AuditSigner(Ed25519PrivateKey.generate())
    keys = TrustedKeys.of(signer.public_key)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(str(Path(tmp) / "bench.sqlite"))
        verifier = AuditVerifier(store, signer, keys, FrozenClock(T0))
        prev = GENESIS
        for first in range(1, total + 1, every):
            batch = _rows("w", first, every, prev)
            store.append_audit(batch)
            prev = batch[-1].hash
            store.add_audit_checkpoint(signer.sign("w", batch[-1].seq, prev, HEAD, T0))
        start = time.perf_counter()
        full = verifier.verify(full=True)
        full_s = time.perf_counter() - start
        batch = _rows("w", total + 1, every, prev)
        store.append_audit(batch)
        store.add_audit_checkpoint(signer.sign("w", batch[-1].seq, batch[-1].hash, HEAD, T0))
        start = time.perf_counter()
        incremental = verifier.verify()
        inc_s = time.perf_counter() - start
        lines = list(
            archive.lines_of(
                signer.key_id,
                signer.public_pem(),
                store.list_audit_checkpoints("w"),
                store.iter_audit_writer("w"),
            )
        )
        start = time.perf_counter()
        offline = archive.verify_archive(archive.read_archive(lines), keys)
        off_s = time.perf_counter() - start
        store.close()
    print(f"full:        {full.records_checked} rows in {full_s:.3f}s ok={full.ok}")
    print(f"incremental: {incremental.records_checked} rows in {inc_s:.3f}s ok={incremental.ok}")
    print(f"offline:     {offline.records_checked} rows in {off_s:.3f}s ok={offline.ok}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
