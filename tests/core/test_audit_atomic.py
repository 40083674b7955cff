"""A write and its audit record are one transaction: a server killed with SIGKILL in the
middle of a registration loop leaves every stored credential with its vault.register
record, and no record of a registration that is not stored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bucketvault.audit import verify_chain
from bucketvault.store.base import AuditFilter
from bucketvault.store.sqlite import SqliteStore

SRC = Path(__file__).resolve().parents[2] / "src"

# The child serves in-process and registers from four threads until it is killed.
CHILD = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from bucketvault.testing.fakes import offline_providers
    from bucketvault.testing.server import start_server

    data = Path(sys.argv[1])
    with start_server(data.parent, data_dir=data, providers=offline_providers()) as srv:
        def loop(t):
            c = srv.client()
            i = 0
            while True:
                doc = {"access_id": "GOOG1EXAMPLEHMAC", "secret": f"s-{t}-{i}"}
                c.register_credential("acme", "GCS_HMAC", doc)
                print("registered", flush=True)
                i += 1
        for t in range(4):
            threading.Thread(target=loop, args=(t,), daemon=True).start()
        threading.Event().wait()
    """
)


def test_sigkill_mid_registration_loop_leaves_no_write_without_its_record(
    tmp_path: Path,
) -> None:
    data = tmp_path / "bv"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        seen, deadline = 0, time.monotonic() + 60
        while seen < 60 and time.monotonic() < deadline:
            if not child.stdout.readline():
                break
            seen += 1
        assert seen == 60, "the child did not register"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    store = SqliteStore(data / "bucketvault.sqlite")
    try:
        stored = {s.credential.credential_id for s in store.list_credentials("acme", "", 0)}
        records = list(store.query_audit(AuditFilter(action="vault.register")))
        claimed = {r.event.credential_id for r in records if r.event.outcome == "ok"}
        assert len(stored) >= seen
        assert stored == claimed
        assert verify_chain(store.iter_audit_chain()).ok
    finally:
        store.close()
