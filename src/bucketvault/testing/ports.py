"""Loopback ports and child processes for test peers: pick a port, wait for it, stop it.

Every emulator the tests run goes through these few functions, so that "bound to
127.0.0.1", "bounded wait" and "stopped by its PID" are written once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import requests

LOOPBACK = "127.0.0.1"

# A readiness check: True once the peer answers.
Probe = Callable[[], bool]


class EmulatorFailed(RuntimeError):
    """A peer exited while starting, or did not answer in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def http_answers(url: str) -> Probe:
    """Ready once ``url`` gives any HTTP response (an error status is still an answer)."""

    def probe() -> bool:
        try:
            requests.get(url, timeout=1)
        except requests.RequestException:
            return False
        return True

    return probe


def tcp_accepts(port: int) -> Probe:
    """Ready once 127.0.0.1:``port`` accepts a connection (for peers that speak TLS only)."""

    def probe() -> bool:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.2):
                return True
        except OSError:
            return False

    return probe


def log_tail(log: Path | None, lines: int = 20) -> str:
    """The last lines of a peer's log, to put in an error; empty if there is none."""
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").strip().splitlines()[-lines:]
    return "\n".join(["", f"last lines of {log}:", *text]) if text else ""


def wait_until_ready(
    proc: subprocess.Popen[bytes],
    ready: Probe,
    *,
    name: str,
    timeout: float,
    log: Path | None = None,
) -> None:
    """Return once ``ready()``; raise EmulatorFailed if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            raise EmulatorFailed(
                f"{name} (pid {proc.pid}) exited with status {code} while starting{log_tail(log)}"
            )
        if ready():
            return
        if time.monotonic() > deadline:
            raise EmulatorFailed(
                f"{name} (pid {proc.pid}) did not answer within {timeout:g} s{log_tail(log)}"
            )
        time.sleep(0.05)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate a child we started, by its PID; kill it if it outlives ``timeout``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """Like stop_process, for a server that is not our child (a daemonised postmaster)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _alive(pid):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


__all__ = [
    "LOOPBACK",
    "EmulatorFailed",
    "Probe",
    "free_port",
    "http_answers",
    "log_tail",
    "stop_pid",
    "stop_process",
    "tcp_accepts",
    "wait_until_ready",
]
