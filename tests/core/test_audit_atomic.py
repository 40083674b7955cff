"""A write and its audit record are one transaction: a server killed with SIGKILL in the
middle of a registration and rebind loop leaves every stored credential with its
vault.register record, every rebind (version bump) with its vault.rebind_mount record,
no record of a write that is not stored, and every acknowledged write in place."""

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
from bucketvault.testing.fakes import offline_providers
from bucketvault.testing.server import start_server

SRC = Path(__file__).resolve().parents[2] / "src"

# The child serves in-process, registers from three threads and rebinds one mount back
# and forth from a fourth until it is killed; it prints each acknowledged write.
CHILD = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from bucketvault.testing.fakes import offline_providers
    from bucketvault.testing.server import start_server

    data = Path(sys.argv[1])
    said = threading.Lock()
    def say(*words):
        with said:  # one whole line per write: threads must not interleave
            sys.stdout.write(" ".join(map(str, words)) + "\\n")
            sys.stdout.flush()
    with start_server(data.parent, data_dir=data, providers=offline_providers()) as srv:
        def doc(t, i):
            return {"access_id": "GOOG1EXAMPLEHMAC", "secret": f"s-{t}-{i}"}
        c = srv.client()
        pair = [c.register_credential("acme", "GCS_HMAC", doc("r", i)).credential_id
                for i in range(2)]
        m = c.create_mount("acme", name="m", bucket="b", credential_id=pair[0])
        say("mount", m.mount_id)
        def loop(t):
            c = srv.client()
            i = 0
            while True:
                cred = c.register_credential("acme", "GCS_HMAC", doc(t, i))
                say("registered", cred.credential_id)
                i += 1
        def rebind():
            c = srv.client()
            version = m.version
            while True:
                to = pair[version % 2]
                version = c.rebind_mount("acme", m.mount_id, to, version).version
                say("rebound", version, to)
        for t in range(3):
            threading.Thread(target=loop, args=(t,), daemon=True).start()
        threading.Thread(target=rebind, daemon=True).start()
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
    acked: set[str] = set()
    rebound: list[tuple[int, str]] = []
    mount_id = ""
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 25
        while (len(acked) < 40 or len(rebound) < 15) and time.monotonic() < deadline:
            line = child.stdout.readline().split()
            if not line:
                break
            if line[0] == "mount":
                mount_id = line[1]
            elif line[0] == "registered":
                acked.add(line[1])
            elif line[0] == "rebound":
                rebound.append((int(line[1]), line[2]))
        assert len(acked) >= 40 and len(rebound) >= 15, "the child did not register and rebind"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    store = SqliteStore(data / "bucketvault.sqlite")
    try:
        stored = {s.credential.credential_id for s in store.list_credentials("acme", "", 0)}
        records = list(store.query_audit(AuditFilter(action="vault.register")))
        claimed = {r.event.credential_id for r in records if r.event.outcome == "ok"}
        assert acked <= stored, "every acknowledged registration is there"
        assert stored == claimed
        mount = store.get_mount("acme", mount_id)
        assert mount is not None
        last_version, last_to = rebound[-1]
        assert mount.version >= last_version, "every acknowledged rebind is there"
        if mount.version == last_version:
            assert mount.credential_id == last_to
        rebinds = list(store.query_audit(AuditFilter(action="vault.rebind_mount", outcome="ok")))
        # One record per version bump (create is version 1), the last naming the binding.
        assert len(rebinds) == mount.version - 1
        assert rebinds[-1].event.credential_id == mount.credential_id
        assert verify_chain(store.iter_audit_chain()).ok
    finally:
        store.close()
    # Restarted on the same data: it serves, and its own verification agrees.
    with start_server(tmp_path, data_dir=data, providers=offline_providers()) as srv:
        c = srv.client()
        assert c.get_mount("acme", mount_id).version == mount.version
        verdict = c.verify_audit()
        assert verdict.ok, verdict.detail
