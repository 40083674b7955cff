"""Decrypted secrets cannot reach disk through a core dump (issue 14).

A real ``bucketvault serve`` process decrypts a canary credential (it signs with it),
then is killed by SIGABRT with core dumps allowed by the limit it inherited: it leaves no
core file. A control child started the same way from the same directory does leave one,
so the test proves the server's own hardening, not this machine's settings.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import resource
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from core.secrets_fixtures import sample

import bucketvault
from bucketvault.testing.server import start_server_process

# The child must run this checkout's code from any working directory: a relative
# PYTHONPATH ("src") would stop resolving once it starts elsewhere.
SRC = str(Path(bucketvault.__file__).resolve().parents[1])

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


# Every in-process test server hardens the pytest process itself (hard RLIMIT_CORE 0, for
# good), and its children inherit that. A forkserver started now, at collection, before any
# test ran, keeps the original limits: the test body runs in a child of it.
_CONTEXT = multiprocessing.get_context("forkserver")
if sys.platform.startswith("linux"):
    multiprocessing.forkserver.ensure_running()


def cores(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.startswith("core")]


def wait_dead(pid: int) -> None:
    """Until the process is a zombie (the kernel writes a core before that) or gone."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not die")


def _crash_a_control_and_the_server(tmp_path: Path) -> str:
    """Runs in the forkserver's child: "" when it went as it should, else what did not."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if hard == 0:
        return "skip: the hard RLIMIT_CORE is 0 here: no process can dump core"
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))  # children inherit it
    control_dir, server_dir = tmp_path / "control", tmp_path / "server"
    control_dir.mkdir()
    server_dir.mkdir()
    control = subprocess.run(
        [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGABRT)"],
        cwd=control_dir,
        check=False,
    )
    if control.returncode != -signal.SIGABRT or not cores(control_dir):
        return "skip: a control process leaves no core file on this machine"
    for core in cores(control_dir):
        core.unlink()  # megabytes of an interpreter: not kept in pytest's tmp dirs

    canary = "CANARY" + secrets.token_hex(8)
    os.chdir(server_dir)  # the child's working directory: where a core would go
    env = {"PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    with start_server_process(tmp_path, env=env, workers=2) as srv:
        assert srv.pid is not None
        assert Path(f"/proc/{srv.pid}/cwd").resolve() == server_dir.resolve()
        c = srv.client()
        cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC", canary))
        mount = c.create_mount("acme", name="m", bucket="b", credential_id=cred.credential_id)
        assert c.sign_url("acme", mount.mount_id, "a.jpg").url  # the secret is decrypted
        os.kill(srv.pid, signal.SIGABRT)
        wait_dead(srv.pid)
    left = list(server_dir.iterdir())
    for core in cores(server_dir):
        core.unlink()
    return f"the killed server left {[p.name for p in left]}" if left else ""


def test_killed_server_leaves_no_core_file_after_decrypting(tmp_path: Path) -> None:
    if Path("/proc/sys/kernel/core_pattern").read_text().strip() != "core":
        pytest.skip("core files do not go to the process's directory on this machine")
    with _CONTEXT.Pool(1) as pool:
        said = pool.apply(_crash_a_control_and_the_server, (tmp_path,))
    if said.startswith("skip: "):
        pytest.skip(said.removeprefix("skip: "))
    assert said == ""
