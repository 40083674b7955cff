"""`make demo` (bucketvault.testing.demo) run as a user runs it: a child process, its output read.

The demo starts real stand-ins and a real `bucketvault serve`; these tests check what it
prints (every step, the fetched objects, the audit verdict), that it leaves no process or
directory behind (after success and after Ctrl-C) and that no secret it registered shows.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bucketvault.testing.demo import OBJECTS
from bucketvault.testing.emulators import AZURITE, FAKE_GCS, EmulatorMissing, missing_emulator

pytestmark = [pytest.mark.azurite, pytest.mark.gcs]

DEMO = [sys.executable, "-m", "bucketvault.testing.demo"]
# The steps a user must see, in this order (the command lines the demo prints).
STEPS = (
    "$ bucketvault health",
    "$ bucketvault credentials register --tenant acme --kind S3_ACCESS_KEY",
    "$ bucketvault credentials register --tenant acme --kind GCS_SERVICE_ACCOUNT",
    "$ bucketvault credentials register --tenant acme --kind AZURE_SHARED_KEY",
    "$ bucketvault credentials list",
    "$ bucketvault mounts create --tenant acme --max-ttl 1h --methods GET,HEAD --name photos",
    "$ bucketvault mounts create --tenant acme --max-ttl 1h --methods GET,HEAD --name reports",
    "$ bucketvault mounts create --tenant acme --max-ttl 1h --methods GET,HEAD --name invoices",
    "$ bucketvault sign --tenant acme --mount photos",
    "$ bucketvault sign --tenant acme --mount reports",
    "$ bucketvault sign --tenant acme --mount invoices",
    "$ bucketvault ls --tenant acme --mount photos --prefix photos/2026/",
    "$ bucketvault credentials register --tenant acme --kind S3_ACCESS_KEY",
    "$ bucketvault mounts rebind --tenant acme --id photos --credential s3-key-2",
    "$ bucketvault credentials revoke --tenant acme --id s3-key-1",
    "$ bucketvault sign --tenant acme --mount photos",
    "$ bucketvault audit query --tenant acme",
    "$ bucketvault audit verify --full",
)


@pytest.fixture(autouse=True)
def emulators_installed() -> Iterator[None]:
    """Azurite and fake-gcs-server must be there (S3 falls back to moto, always installed)."""
    for tool in (AZURITE, FAKE_GCS):
        try:
            tool.require()
        except EmulatorMissing as exc:
            missing_emulator(exc)
    yield


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("BUCKETVAULT_TOKEN", None)
    return env


def _pids(output: str) -> list[int]:
    return [int(p) for p in re.findall(r"\(pid (\d+)\)", output)]


def _work_dir(output: str) -> Path:
    [work] = re.findall(r"^  removed (\S+)$", output, re.M)
    return Path(work)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _processes_naming(path: Path) -> list[int]:
    """Processes of ours whose command line or environment names path (their children too:
    the environment is inherited)."""
    found = []
    needle = str(path).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in blob:
            found.append(int(entry.name))
    return found


def _assert_nothing_left(output: str, expected_pids: int) -> None:
    pids = _pids(output)
    assert len(pids) == expected_pids, output
    assert [p for p in pids if _alive(p)] == []
    work = _work_dir(output)
    assert not work.exists()
    assert _processes_naming(work) == []


def test_demo_shows_every_step_and_leaves_nothing(tmp_path: Path) -> None:
    secrets_file = tmp_path / "secrets.json"
    done = subprocess.run(
        [*DEMO, "--secrets-file", str(secrets_file)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    position = 0
    for step in STEPS:
        found = out.find(step, position)
        assert found >= 0, f"missing or out of order: {step!r}\n{out}"
        position = found + len(step)

    fetched = re.findall(r"GET -> HTTP (\d+), (\d+) bytes", out)
    sizes = [len(OBJECTS[c][1]) for c in ("s3", "gcs", "azure", "s3")]
    assert fetched == [("200", str(n)) for n in sizes]
    # The rotated mount signs with the new key: the line the demo printed names it.
    [new_key] = re.findall(r"\(signed by the new key (\S+)\)", out)
    assert f"X-Amz-Credential={new_key}%2F" in out
    listing = out[out.index("$ bucketvault ls") :]
    assert "PRE  photos/2026/raw/" in listing and "photos/2026/cat.jpg" in listing
    verdict = out[out.index("$ bucketvault audit verify") :]
    assert re.search(r"^\s+ok: True$", verdict, re.M), verdict
    assert re.search(r"^demo ok in \d+\.\d s$", out, re.M)

    registered = json.loads(secrets_file.read_text())
    # Two S3 secrets, the service account's private key, the Azure account key.
    assert len(registered) == 4
    for value in registered:
        assert value not in out
        # A PEM: no line of its body either.
        for line in value.splitlines():
            if len(line) >= 16 and not line.startswith("-----"):
                assert line not in out
    _assert_nothing_left(out, expected_pids=4)


def test_ctrl_c_stops_everything_it_started() -> None:
    proc = subprocess.Popen(
        DEMO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "bucketvault serve (pid" in line:
                break
        # Every stand-in and the service run now; Ctrl-C reaches the demo alone here.
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines) + rest
    assert proc.returncode == 130, out
    assert "demo: interrupted" in out
    _assert_nothing_left(out, expected_pids=4)
