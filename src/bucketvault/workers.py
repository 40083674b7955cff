"""`serve --workers N`: a supervisor and N worker processes sharing the port.

Python serves one core per process (the GIL), so N processes each bind the gRPC port (and
the link listener's) with SO_REUSEPORT and the kernel spreads new connections over them.
Each worker has its own session and URL caches and its own audit chain (writer id
`<base>-w<i>`): one chain per writer is what keeps the shared store verifiable, since two
processes appending to one chain would fork it.

The supervisor creates the first-run state once (service.prepare) before any worker
starts, reports ready only when every worker's health service answers SERVING (each
worker also serves health on a private loopback port for it), forwards SIGTERM/SIGINT
(graceful drain) and SIGHUP (policy reload), and restarts nothing: a worker that dies
stops the others and the supervisor exits 1, so the process manager above it (systemd,
Kubernetes) sees the failure instead of a restart loop hiding it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import IO

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bucketvault.config import Config

log = logging.getLogger(__name__)

# What a worker prints on stdout once its private health port is up (the supervisor reads it).
HEALTH_LINE = "bucketvault: worker health on "
# How long workers get to come up (start-up opens the store and the KEK).
READY_SECONDS = 60.0
# After the drain bound, a worker that is still running is killed.
KILL_MARGIN_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


def writer_id(base: str, index: int) -> str:
    """Worker index's audit writer id: one hash chain per worker."""
    return f"{base}-w{index}"


def die_with_parent() -> None:
    """A worker ends (SIGTERM, so it drains) when its supervisor dies, even by SIGKILL:
    no orphan keeps serving half of the port. Linux only; elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def serve_worker_health(servicer: health.HealthServicer) -> tuple[grpc.Server, str]:
    """The worker's own health service on a loopback port of its own, so the supervisor
    can ask this worker (the shared port reaches whichever worker the kernel picks).
    The servicer is the service's, so a draining worker answers NOT_SERVING here too."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health"))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def _split(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host, int(port)


def _reserve(listen: str) -> tuple[socket.socket | None, str]:
    """A port for `host:0`, held (bound, not listening, SO_REUSEPORT) until the workers
    have bound it too, so that all of them share one port nobody else can take."""
    host, port = _split(listen)
    if port != 0:
        return None, listen
    bare = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in bare else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((bare, 0))
    return sock, f"{host}:{sock.getsockname()[1]}"


@dataclass
class Worker:
    """One child process and what it told the supervisor."""

    index: int
    writer_id: str
    proc: subprocess.Popen[str]
    health_address: str = ""
    told: threading.Event = field(default_factory=threading.Event)

    def read_stdout(self) -> None:
        """Find the health line; drain the rest (a full pipe would block the worker)."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(HEALTH_LINE):
                self.health_address = line[len(HEALTH_LINE) :].strip()
                self.told.set()
        self.told.set()


def _serving(address: str) -> bool:
    try:
        with grpc.insecure_channel(address) as channel:
            status = (
                health_pb2_grpc.HealthStub(channel)
                .Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                .status
            )
    except grpc.RpcError:
        return False
    return bool(status == health_pb2.HealthCheckResponse.SERVING)


@dataclass
class Supervisor:
    """Starts config.workers copies of `command` (the serve CLI), watches, stops them."""

    config: Config
    command: Sequence[str]
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    workers: list[Worker] = field(default_factory=list)

    def _env(self, index: int, base: str, listen: str, http_listen: str) -> dict[str, str]:
        env = dict(self.config.env)
        env.update(
            BUCKETVAULT_WORKERS="1",
            BUCKETVAULT_LISTEN=listen,
            BUCKETVAULT_DATA_DIR=str(self.config.data_dir),
            BUCKETVAULT_AUDIT_WRITER_ID=writer_id(base, index),
        )
        if http_listen:
            env["BUCKETVAULT_HTTP_LISTEN"] = http_listen
        if self.config.metrics_listen:
            # Each worker has its own registry: one scrape target per worker (port + i),
            # not a shared port whose answers would jump between processes.
            host, port = _split(self.config.metrics_listen)
            env["BUCKETVAULT_METRICS_LISTEN"] = f"{host}:{port + index if port else 0}"
        return env

    def _start(self, listen: str, http_listen: str) -> None:
        base = self.config.audit_writer_id or "w-" + secrets.token_hex(6)
        for i in range(self.config.workers):
            proc = subprocess.Popen(
                [*self.command, "--worker-index", str(i)],
                env=self._env(i, base, listen, http_listen),
                stdout=subprocess.PIPE,
                text=True,
            )
            worker = Worker(i, writer_id(base, i), proc)
            threading.Thread(target=worker.read_stdout, name=f"worker-{i}", daemon=True).start()
            self.workers.append(worker)

    def _wait_ready(self, stop: threading.Event) -> bool:
        deadline = time.monotonic() + READY_SECONDS
        for w in self.workers:
            while not stop.is_set() and time.monotonic() < deadline:
                if self._dead() is not None:
                    return False
                if w.told.wait(0.1) and w.health_address:
                    if _serving(w.health_address):
                        break
                    time.sleep(0.05)  # up but not SERVING yet (the store probe)
            else:
                return False
        return True

    def _dead(self) -> Worker | None:
        return next((w for w in self.workers if w.proc.poll() is not None), None)

    def _signal_all(self, sig: int) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.send_signal(sig)

    def reload(self) -> None:
        """SIGHUP: every worker re-reads the policy file."""
        self._signal_all(signal.SIGHUP)

    def _stop_all(self) -> bool:
        """SIGTERM to every worker (each drains), wait, kill what outlives the bound;
        True when every worker exited 0."""
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.config.drain_seconds + KILL_MARGIN_SECONDS
        clean = True
        for w in self.workers:
            try:
                code = w.proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.error("worker %d (pid %d) did not stop in time: killed", w.index, w.proc.pid)
                w.proc.kill()
                code = w.proc.wait()
            clean = clean and code == 0
        return clean

    def run(self, stop: threading.Event) -> int:
        """Serve until stop is set (0 when every worker drained cleanly) or a worker dies (1)."""
        reserved, listen = _reserve(self.config.listen)
        http_reserved, http_listen = (
            _reserve(self.config.http.listen) if self.config.http else (None, "")
        )
        try:
            self._start(listen, http_listen)
            ready = self._wait_ready(stop)
        finally:
            # Every worker has bound the ports (or failed): the placeholders can go.
            for sock in (reserved, http_reserved):
                if sock is not None:
                    sock.close()
        if not ready and not stop.is_set():
            dead = self._dead()
            why = f"worker {dead.index} exited with {dead.proc.returncode}" if dead else "timeout"
            log.error("workers did not start (%s); stopping the others", why)
            self._stop_all()
            return 1
        if ready:
            self._announce(listen)
        while not stop.wait(0.2):
            dead = self._dead()
            if dead is not None:
                log.error(
                    "worker %d (pid %d) exited with %s; stopping the others (no restart)",
                    dead.index,
                    dead.proc.pid,
                    dead.proc.returncode,
                )
                self._stop_all()
                return 1
        return 0 if self._stop_all() else 1

    def _announce(self, listen: str) -> None:
        for w in self.workers:
            print(
                f"bucketvault: worker {w.index} pid {w.proc.pid} writer {w.writer_id} "
                f"health {w.health_address}",
                file=self.out,
                flush=True,
            )
        n = len(self.workers)
        print(f"bucketvault: listening on {listen} ({n} workers)", file=self.out, flush=True)
        token = self.config.data_dir / "admin.token"
        if token.exists():
            print(f"bucketvault: admin token in {token}", file=self.out, flush=True)
        print(
            "bucketvault: ask one worker: .venv/bin/bucketvault --address <its health "
            "address above> health (the shared port answers for whichever worker it reaches)",
            file=self.out,
            flush=True,
        )


def supervise(
    config: Config,
    command: Sequence[str],
    install: Callable[[int, Callable[..., None]], object] = signal.signal,
) -> int:
    """Run a Supervisor with SIGTERM/SIGINT stopping it and SIGHUP forwarded."""
    from bucketvault.service import prepare  # noqa: PLC0415 - the heavy import, only here

    prepare(config)
    stop = threading.Event()
    supervisor = Supervisor(config, command)
    for sig in (signal.SIGINT, signal.SIGTERM):
        install(sig, lambda *_: stop.set())
    install(signal.SIGHUP, lambda *_: supervisor.reload())
    return supervisor.run(stop)


def worker_command(argv0: Sequence[str] | None = None) -> list[str]:
    """The same CLI, as a child: `python -m bucketvault.cli.main serve`."""
    return list(argv0 or (sys.executable, "-m", "bucketvault.cli.main", "serve"))


__all__ = [
    "HEALTH_LINE",
    "Supervisor",
    "die_with_parent",
    "serve_worker_health",
    "supervise",
    "worker_command",
    "writer_id",
]
