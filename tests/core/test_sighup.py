"""SIGHUP makes a running `bucketvault serve` read its policy file again, at once.

The file is rewritten in place to the same size and its mtime put back, so the change
poller (which compares mtime, size and inode) cannot see it: only the signal can.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections.abc import Callable
from pathlib import Path

from bucketvault import errors
from bucketvault.auth.authn import hash_token
from bucketvault.testing.server import RunningServer, start_server_process


def _swap_token_unseen(policy: Path, old: str, new: str) -> None:
    """Replace a token hash in place: same bytes count, same inode, same mtime."""
    before = os.stat(policy)
    text = policy.read_text()
    changed = text.replace(hash_token(old), hash_token(new))
    assert changed != text and len(changed) == len(text)
    with policy.open("r+", encoding="utf-8") as fh:
        fh.write(changed)
    os.utime(policy, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(policy)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )


def _works(server: RunningServer, token: str) -> bool:
    client = server.client(token)
    try:
        client.registration_key()
    except errors.Unauthenticated:
        return False
    return True


def _eventually(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_sighup_reloads_a_change_the_poller_cannot_see(tmp_path: Path) -> None:
    with start_server_process(tmp_path) as server:
        assert server.pid is not None
        policy = server.data_dir / "policy.json"
        assert json.loads(policy.read_text())["principals"][0]["name"] == "admin"
        new = "bv_" + secrets.token_urlsafe(32)
        assert len(new) == len(server.admin_token)
        _swap_token_unseen(policy, server.admin_token, new)
        # Three poll intervals later the server still serves the old policy: the change is
        # invisible to the poller, so what follows is the signal's doing.
        time.sleep(6.5)
        assert _works(server, server.admin_token)
        assert not _works(server, new)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGHUP)
        assert _eventually(lambda: _works(server, new), 5.0)
        assert not _works(server, server.admin_token)


def test_sighup_with_a_bad_file_keeps_the_policy_serving(tmp_path: Path) -> None:
    with start_server_process(tmp_path) as server:
        policy = server.data_dir / "policy.json"
        policy.write_text('{"principals": [{"name": "admin"}]}\n')
        assert server.pid is not None
        os.kill(server.pid, signal.SIGHUP)
        time.sleep(1.0)
        assert _works(server, server.admin_token)
