"""Soak: a mixed load against a real server child process for SOAK_SECONDS (default 600).

The child serves with local providers (testing/fakes.py: signing and listing in-process,
no cloud), so the run measures the service itself: transport, authorization, handles,
the URL cache and the audit writer. Callers in threads, one signer principal per tenant,
mix SignURL, SignURLs (batches of 50), ListPrefix and registrations (RegisterCredential;
no RevokeCredential: on SQLite under steady load its WAL purge stays busy and it answers
UNAVAILABLE SHRED_INCOMPLETE, by design) across tenants. After a warm-up (caches and worker threads
filled), the server's RSS (/proc/PID/status VmRSS) is read; at the end again, and
``bucketvault audit verify --full`` must pass.

Prints calls, errors, p50/p99 per call type, RSS at start and end; exits 1 on any error,
RSS growth over SOAK_MAX_RSS_GROWTH (default 0.10) or a failed verify.

Usage: PYTHONPATH=src .venv/bin/python -m bucketvault.testing.soak
Environment: SOAK_SECONDS (600), SOAK_CALLERS (4), SOAK_WARMUP_SECONDS (max(3, 5 %)).
Loopback only; the run is bounded by SOAK_SECONDS plus start-up and verification.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bucketvault import errors
from bucketvault.auth.authn import hash_token
from bucketvault.client import BucketVaultClient
from bucketvault.testing.server import child_process

TENANTS = ("acme", "globex", "initech")
# Every local mount lists these; SignURL and SignURLs draw keys from them.
KEYS = tuple(f"photos/{i:04d}.jpg" for i in range(200))
BATCH = 50
# Call types and their weights in the mix.
MIX = (("SignURL", 10), ("SignURLs", 2), ("ListPrefix", 2), ("Register", 1))
_LISTENING = "soak server listening on "


def _secret(kind: str, n: int) -> dict[str, str]:
    if kind == "GCS_HMAC":
        return {"access_id": f"GOOG1SOAK{n:08d}", "secret": secrets.token_urlsafe(30)}
    return {
        "access_key_id": f"AKIASOAK{n:08d}",
        "secret_access_key": secrets.token_urlsafe(30),
        "endpoint_url": "http://127.0.0.1:9",  # never contacted: local providers
        "region": "us-east-1",
    }


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def serve_child() -> None:
    """The server child: `bucketvault serve` with local providers (no cloud)."""
    from bucketvault.config import Config  # noqa: PLC0415
    from bucketvault.observe.logs import configure_logging  # noqa: PLC0415
    from bucketvault.service import build_service  # noqa: PLC0415
    from bucketvault.testing.fakes import local_providers  # noqa: PLC0415

    configure_logging(os.environ)
    config = Config.from_env(os.environ)
    service = build_service(config, providers=local_providers(KEYS))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(_LISTENING + service.address, flush=True)
    stop.wait()
    service.shutdown(5)


@dataclass
class Server:
    address: str
    pid: int
    admin: str
    tokens: dict[str, str]


@contextmanager
def server_process(tmp: Path, env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """The child on 127.0.0.1:<free port> with a policy: admin, and one signer per tenant."""
    data_dir = tmp / "data"
    data_dir.mkdir(mode=0o700)
    admin = "bv_" + secrets.token_urlsafe(32)
    tokens = {t: "bv_" + secrets.token_urlsafe(32) for t in TENANTS}
    entries = [
        {
            "name": "admin",
            "token_sha256": hash_token(admin),
            "roles": ["signer", "operator", "auditor"],
            "tenants": ["*"],
        },
        *(
            {
                "name": f"signer-{t}",
                "token_sha256": hash_token(tok),
                "roles": ["signer"],
                "tenants": [t],
            }
            for t, tok in tokens.items()
        ),
    ]
    policy = data_dir / "policy.json"
    policy.write_text(json.dumps({"principals": entries}))
    policy.chmod(0o600)
    child_env = {
        **os.environ,
        "BUCKETVAULT_ALLOW_INSECURE_ENDPOINTS": "1",
        "BUCKETVAULT_DATA_DIR": str(data_dir),
        "BUCKETVAULT_LISTEN": "127.0.0.1:0",
        # WARNING: an INFO line per RPC would cost the shared cores more than the calls.
        "BUCKETVAULT_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    with child_process(
        "bucketvault.testing.soak",
        "--serve",
        env=child_env,
        listening=re.compile(re.escape(_LISTENING) + r"(\S+)"),
        start_within=60,
        stop_within=15,
    ) as child:
        yield Server(child.address, child.pid, admin, tokens)


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float, error: str = "") -> None:
        with self.lock:
            self.latencies.setdefault(kind, []).append(seconds)
            if error:
                self.errors.setdefault(kind, []).append(error)


@dataclass(frozen=True)
class Mount:
    tenant: str
    mount_id: str


def _setup(srv: Server) -> list[Mount]:
    """Per tenant: an S3 and a GCS HMAC credential, a mount on each (one with stable URLs
    off, so both signing paths run)."""
    mounts = []
    with BucketVaultClient(srv.address, srv.admin) as admin:
        for t in TENANTS:
            for n, kind in enumerate(("S3_ACCESS_KEY", "GCS_HMAC")):
                cred = admin.register_credential(t, kind, _secret(kind, n))
                m = admin.create_mount(
                    t,
                    name=f"m{n}",
                    bucket=f"{t}-bucket",
                    credential_id=cred.credential_id,
                    region="us-east-1" if kind == "S3_ACCESS_KEY" else "",
                    max_ttl_seconds=3600,
                    cache_stable_urls=n == 0,
                )
                mounts.append(Mount(t, m.mount_id))
    return mounts


def _caller(
    srv: Server, mounts: list[Mount], tally: Tally, stop: threading.Event, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - a load mix, not a secret
    kinds = [k for k, w in MIX for _ in range(w)]
    clients = {t: BucketVaultClient(srv.address, tok) for t, tok in srv.tokens.items()}
    admin = BucketVaultClient(srv.address, srv.admin)
    n = 0
    try:
        while not stop.is_set():
            kind = rng.choice(kinds)
            mount = rng.choice(mounts)
            c = clients[mount.tenant]
            t0 = time.perf_counter()
            error = ""
            try:
                if kind == "SignURL":
                    c.sign_url(mount.tenant, mount.mount_id, rng.choice(KEYS), ttl_seconds=600)
                elif kind == "SignURLs":
                    got = c.sign_urls(
                        mount.tenant, mount.mount_id, rng.sample(KEYS, BATCH), ttl_seconds=600
                    )
                    if len(got) != BATCH:
                        error = f"{len(got)} URLs for {BATCH} keys"
                elif kind == "ListPrefix":
                    pages = list(c.list_prefix(mount.tenant, mount.mount_id, prefix="photos/00"))
                    if sum(len(p.entries) for p in pages) != 100:
                        error = "listing incomplete"
                else:
                    n += 1
                    admin.register_credential(
                        mount.tenant, "GCS_HMAC", _secret("GCS_HMAC", seed * 1_000_000 + n)
                    )
            except errors.BucketVaultError as exc:
                error = f"{exc.code.name} {exc.reason}"
            except Exception as exc:  # every failure is an error of the run
                error = type(exc).__name__
            tally.add(kind, time.perf_counter() - t0, error)
    finally:
        for client in (*clients.values(), admin):
            client.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else 0.0


@dataclass
class SoakResult:
    seconds: float
    calls: dict[str, int]
    errors: dict[str, list[str]]
    p50_ms: dict[str, float]
    p99_ms: dict[str, float]
    rss_start_kib: int
    rss_end_kib: int
    verify_ok: bool
    verify_output: str
    rss_samples_kib: list[int] = field(default_factory=list)

    @property
    def rss_growth(self) -> float:
        return (self.rss_end_kib - self.rss_start_kib) / max(self.rss_start_kib, 1)

    def failures(self, max_growth: float) -> list[str]:
        out = []
        if any(self.errors.values()):
            out.append(f"{sum(map(len, self.errors.values()))} errors")
        if not sum(self.calls.values()):
            out.append("no calls")
        if self.rss_growth > max_growth:
            out.append(f"RSS grew {self.rss_growth:.1%} (limit {max_growth:.0%})")
        if not self.verify_ok:
            out.append("audit verify --full failed")
        return out

    def report(self) -> str:
        lines = [f"soak: {self.seconds:.0f} s measured, {sum(self.calls.values())} calls"]
        for kind, _ in MIX:
            lines.append(
                f"  {kind:<11} calls {self.calls.get(kind, 0):>7}  errors "
                f"{len(self.errors.get(kind, [])):>4}  p50 {self.p50_ms.get(kind, 0):7.2f} ms"
                f"  p99 {self.p99_ms.get(kind, 0):7.2f} ms"
            )
        for kind, errs in self.errors.items():
            if errs:
                lines.append(f"  {kind} errors (first): {sorted(set(errs))[:5]}")
        lines.append(
            f"  server RSS {self.rss_start_kib / 1024:.1f} MiB -> {self.rss_end_kib / 1024:.1f}"
            f" MiB ({self.rss_growth:+.1%})"
        )
        if self.rss_samples_kib:
            mib = ", ".join(f"{k / 1024:.1f}" for k in self.rss_samples_kib)
            lines.append(f"  server RSS by tenths of the run (MiB): {mib}")
        lines.append(f"  audit verify --full: {'ok' if self.verify_ok else 'FAILED'}")
        return "\n".join(lines)


def run_soak(
    seconds: float,
    *,
    callers: int = 4,
    warmup: float | None = None,
    env: Mapping[str, str] | None = None,
) -> SoakResult:
    """Warm up, read RSS, run the mix for `seconds`, read RSS, verify the audit log."""
    warmup = max(3.0, seconds * 0.05) if warmup is None else warmup
    with tempfile.TemporaryDirectory() as tmp, server_process(Path(tmp), env) as srv:
        mounts = _setup(srv)
        tally = Tally()
        stop = threading.Event()
        threads = [
            threading.Thread(target=_caller, args=(srv, mounts, tally, stop, i))
            for i in range(callers)
        ]
        for t in threads:
            t.start()
        time.sleep(warmup)
        # Warm-up over: count from here (errors of the warm-up too would fail the run).
        with tally.lock:
            warm_errors = {k: list(v) for k, v in tally.errors.items() if v}
            tally.latencies.clear()
            tally.errors.clear()
        rss_start = rss_kib(srv.pid)
        start = time.monotonic()
        # RSS along the way (tenths of the run): a leak climbs, a cache filling flattens.
        samples = [rss_start]
        for i in range(1, 11):
            time.sleep(max(0.0, start + seconds * i / 10 - time.monotonic()))
            samples.append(rss_kib(srv.pid))
        stop.set()
        for t in threads:
            t.join()
        measured = time.monotonic() - start
        rss_end = rss_kib(srv.pid)
        for kind, errs in warm_errors.items():
            tally.errors.setdefault(kind, []).extend(f"warm-up: {e}" for e in errs)
        verify = subprocess.run(
            [
                sys.executable,
                "-m",
                "bucketvault.cli.main",
                "--address",
                srv.address,
                "audit",
                "verify",
                "--full",
            ],
            env={**os.environ, "BUCKETVAULT_TOKEN": srv.admin},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    return SoakResult(
        seconds=measured,
        calls={k: len(v) for k, v in tally.latencies.items()},
        errors=tally.errors,
        p50_ms={k: _pct(v, 0.50) for k, v in tally.latencies.items()},
        p99_ms={k: _pct(v, 0.99) for k, v in tally.latencies.items()},
        rss_start_kib=rss_start,
        rss_end_kib=rss_end,
        verify_ok=verify.returncode == 0,
        verify_output=(verify.stdout + verify.stderr).strip(),
        rss_samples_kib=samples,
    )


def main() -> int:
    if sys.argv[1:] == ["--serve"]:
        serve_child()
        return 0
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    callers = int(os.environ.get("SOAK_CALLERS", "4"))
    warm = os.environ.get("SOAK_WARMUP_SECONDS", "")
    max_growth = float(os.environ.get("SOAK_MAX_RSS_GROWTH", "0.10"))
    result = run_soak(seconds, callers=callers, warmup=float(warm) if warm else None)
    print(result.report())
    if not result.verify_ok:
        print(result.verify_output)
    failures = result.failures(max_growth)
    print("soak: " + ("FAILED: " + "; ".join(failures) if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
