"""The shared launchers: a missing tool fails a CI run and skips a local one, a peer that dies
or hangs while starting is a clear error, and every peer is stopped by its PID."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

import bucketvault
from bucketvault.testing.emulators import (
    LOCALSTACK,
    EmulatorFailed,
    Tool,
    required,
    start_localstack,
    start_moto,
)


def not_installed(tool: Tool, tmp_path: Path) -> Tool:
    return dataclasses.replace(tool, executable=tmp_path / "not-installed" / tool.executable.name)


def stand_in(tmp_path: Path, script: str) -> Tool:
    """A 'moto server' that is really a shell script, to start through the real launcher."""
    path = tmp_path / "stand-in"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return Tool("stand-in", path, "make venv")


def test_a_missing_emulator_fails_under_ci(tmp_path: Path) -> None:
    launcher = start_localstack(tool=not_installed(LOCALSTACK, tmp_path))
    with (
        pytest.raises(pytest.fail.Exception, match=r"LocalStack is not installed.*make localstack"),
        required(launcher, env={"CI": "true"}),
    ):
        pass


def test_a_missing_emulator_skips_outside_ci(tmp_path: Path) -> None:
    launcher = start_localstack(tool=not_installed(LOCALSTACK, tmp_path))
    with (
        pytest.raises(pytest.skip.Exception, match=r"LocalStack is not installed.*make localstack"),
        required(launcher, env={}),
    ):
        pass


def run_pytest(directory: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "CI"}
    # The child must import this checkout's bucketvault, whatever the venv has installed.
    environ["PYTHONPATH"] = str(Path(bucketvault.__file__).parents[1])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", str(directory)],
        cwd=directory,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_ci_run_with_a_missing_emulator_fails_and_a_local_one_skips(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path

            import pytest

            from bucketvault.testing.emulators import Tool, required, start_azurite

            ABSENT = Tool("Azurite", Path({str(tmp_path / "absent")!r}), "make azurite")


            @pytest.fixture(scope="session")
            def azurite():
                with required(start_azurite(tool=ABSENT)) as server:
                    yield server
            """
        )
    )
    (tmp_path / "test_blob.py").write_text(
        "def test_one(azurite):\n    pass\n\n\ndef test_two(azurite):\n    pass\n"
    )

    ci = run_pytest(tmp_path, CI="true")
    assert ci.returncode == 1, ci.stdout + ci.stderr
    assert "2 errors" in ci.stdout
    assert "Azurite is not installed" in ci.stdout
    assert "make azurite" in ci.stdout

    local = run_pytest(tmp_path)
    assert local.returncode == 0, local.stdout + local.stderr
    assert "2 skipped" in local.stdout
    assert "make azurite" in local.stdout


def test_a_peer_that_dies_while_starting_says_so_with_its_output(tmp_path: Path) -> None:
    tool = stand_in(tmp_path, "echo 'listen tcp: address already in use' >&2\nexit 3\n")
    with (
        pytest.raises(EmulatorFailed, match=r"(?s)stand-in .*exited with status 3.*already in use"),
        start_moto(tool=tool),
    ):
        pass


def test_a_peer_that_never_answers_is_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    tool = stand_in(tmp_path, f"echo $$ > {pid_file}\nexec sleep 60\n")
    with (
        pytest.raises(EmulatorFailed, match=r"stand-in .*did not answer within 0.5 s"),
        start_moto(tool=tool, timeout=0.5),
    ):
        pass
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_started_peer_answers_on_loopback_and_is_stopped_by_pid() -> None:
    with required(start_moto()) as moto:
        assert moto.url == f"http://127.0.0.1:{moto.port}"
        assert requests.get(f"{moto.url}/moto-api/", timeout=5).ok
        workdir = moto.workdir
    assert moto.proc.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(moto.pid, 0)
    assert not workdir.exists()
