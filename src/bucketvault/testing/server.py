"""Start a real bucketvault gRPC server on 127.0.0.1 for tests and benchmarks.

``start_server`` runs it in this process (a FrozenClock can be shared with the test);
``start_server_process`` runs ``bucketvault serve`` in a child process (benchmarks, so
that the server does not share a GIL with the client).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bucketvault.auth.authn import hash_token
from bucketvault.client import BucketVaultClient
from bucketvault.clock import Clock
from bucketvault.config import Config
from bucketvault.observe.tracing import Tracer
from bucketvault.providers.base import CloudProvider
from bucketvault.service import ADMIN_TOKEN_FILE, Service, build_service
from bucketvault.testing.ports import stop_process
from bucketvault.testing.tls import ServerTls, TlsFiles

BASE_ENV = {"BUCKETVAULT_ALLOW_INSECURE_ENDPOINTS": "1"}

# (name, roles, tenants)
PrincipalSpec = tuple[str, Sequence[str], Sequence[str]]
# (name, mtls_id, roles, tenants): a caller named by its client certificate, no token.
CertPrincipalSpec = tuple[str, str, Sequence[str], Sequence[str]]


@dataclass
class RunningServer:
    address: str
    admin_token: str
    data_dir: Path
    tokens: dict[str, str] = field(default_factory=dict)
    service: Service | None = None
    # The CA that signed the server's certificate, when it serves TLS.
    tls_ca: Path | None = None
    # The certificate clients present when the server requires one and a test names none.
    tls_client: TlsFiles | None = None
    _clients: list[BucketVaultClient] = field(default_factory=list)
    # start_server_process: the child's PID and what it printed before it listened.
    pid: int | None = None
    startup_output: list[str] = field(default_factory=list)

    def client(
        self, token: str | None = None, *, cert: TlsFiles | None = None
    ) -> BucketVaultClient:
        """A client with the admin token, or another principal's ("" for none).

        Over TLS it trusts the server's CA; over mTLS it presents cert (default: a
        certificate naming no principal, so that the token decides).
        """
        cert = cert or self.tls_client
        c = BucketVaultClient(
            self.address,
            token if token is not None else self.admin_token,
            tls_ca=self.tls_ca,
            tls_cert=cert.cert if cert else None,
            tls_key=cert.key if cert else None,
        )
        self._clients.append(c)
        return c

    def close_clients(self) -> None:
        for c in self._clients:
            c.close()


def _write_policy(
    data_dir: Path,
    principals: Sequence[PrincipalSpec],
    cert_principals: Sequence[CertPrincipalSpec] = (),
) -> tuple[str, dict[str, str]]:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    admin = "bv_" + secrets.token_urlsafe(32)
    tokens: dict[str, str] = {}
    entries = [
        {
            "name": "admin",
            "token_sha256": hash_token(admin),
            "roles": ["signer", "operator", "auditor"],
            "tenants": ["*"],
        },
    ]
    for name, roles, tenants in principals:
        token = "bv_" + secrets.token_urlsafe(32)
        tokens[name] = token
        entries.append(
            {
                "name": name,
                "token_sha256": hash_token(token),
                "roles": list(roles),
                "tenants": list(tenants),
            }
        )
    entries += [
        {"name": name, "mtls_id": mtls_id, "roles": list(roles), "tenants": list(tenants)}
        for name, mtls_id, roles, tenants in cert_principals
    ]
    policy = data_dir / "policy.json"
    policy.write_text(json.dumps({"principals": entries}))
    policy.chmod(0o600)
    (data_dir / ADMIN_TOKEN_FILE).write_text(admin + "\n")
    (data_dir / ADMIN_TOKEN_FILE).chmod(0o600)
    return admin, tokens


@contextmanager
def start_server(
    tmp_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    principals: Sequence[PrincipalSpec] = (),
    data_dir: Path | None = None,
    providers: Sequence[CloudProvider] | None = None,
    tls: ServerTls | None = None,
    cert_principals: Sequence[CertPrincipalSpec] = (),
    tracer: Tracer | None = None,
) -> Iterator[RunningServer]:
    """An in-process server on 127.0.0.1:<free port> with a fresh data directory.

    tls: serve these files (mTLS when it has a client CA); clients get its CA.
    tracer: replaces the one the environment describes (an in-memory exporter's).
    """
    data_dir = data_dir or tmp_path / f"bv-{secrets.token_hex(4)}"
    if (data_dir / "policy.json").exists():
        admin = (data_dir / ADMIN_TOKEN_FILE).read_text().strip()
        tokens: dict[str, str] = {}
    else:
        admin, tokens = _write_policy(data_dir, principals, cert_principals)
    merged = {**BASE_ENV, **(tls.env() if tls else {}), **(env or {})}
    config = Config.from_env(
        {**merged, "BUCKETVAULT_DATA_DIR": str(data_dir), "BUCKETVAULT_LISTEN": "127.0.0.1:0"}
    )
    service = build_service(config, clock=clock, providers=providers, tracer=tracer)
    running = RunningServer(
        service.address,
        admin,
        data_dir,
        tokens,
        service,
        tls.ca if tls else None,
        tls.client if tls else None,
    )
    try:
        yield running
    finally:
        running.close_clients()
        service.stop(grace=None)


_LISTENING = re.compile(r"listening on (127\.0\.0\.1:\d+)")


@dataclass(frozen=True)
class Child:
    """A started child process: its PID, the address it listens on, what it printed
    until then."""

    pid: int
    address: str
    startup: list[str]


@contextmanager
def child_process(
    module: str,
    *args: str,
    env: Mapping[str, str],
    listening: re.Pattern[str],
    start_within: float,
    stop_within: float,
) -> Iterator[Child]:
    """``python -m module args`` with env, up once a line matches listening (its group 1
    is the address); terminated by its PID on exit, killed after stop_within."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        address, startup = "", []
        deadline = time.monotonic() + start_within
        while time.monotonic() < deadline:
            line = proc.stdout.readline().decode(errors="replace")
            if not line:
                break
            startup.append(line)
            match = listening.search(line)
            if match:
                address = match.group(1)
                break
        if not address:
            raise RuntimeError(f"{module} did not start:\n" + "".join(startup[-20:]))
        # Keep draining the child's output: a full pipe would block its logging.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield Child(proc.pid, address, startup)
    finally:
        stop_process(proc, stop_within)


@contextmanager
def start_server_process(
    tmp_path: Path, *, env: Mapping[str, str] | None = None, workers: int = 16
) -> Iterator[RunningServer]:
    """``bucketvault serve`` in a child process; stopped (by its PID) on exit."""
    data_dir = tmp_path / f"bv-{secrets.token_hex(4)}"
    admin, tokens = _write_policy(data_dir, ())
    child_env = {
        **os.environ,
        **BASE_ENV,
        **(env or {}),
        "BUCKETVAULT_DATA_DIR": str(data_dir),
        "BUCKETVAULT_LISTEN": "127.0.0.1:0",
        "BUCKETVAULT_GRPC_WORKERS": str(workers),
    }
    with child_process(
        "bucketvault.cli.main",
        "serve",
        env=child_env,
        listening=_LISTENING,
        start_within=30,
        stop_within=10,
    ) as child:
        running = RunningServer(
            child.address, admin, data_dir, tokens, pid=child.pid, startup_output=child.startup
        )
        yield running
        running.close_clients()


__all__ = [
    "BASE_ENV",
    "CertPrincipalSpec",
    "Child",
    "RunningServer",
    "child_process",
    "start_server",
    "start_server_process",
]
