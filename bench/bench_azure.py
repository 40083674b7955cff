"""SAS URLs/s: SignURLs (shared key, batches of 1000) through the real server vs the SDK.

The baseline is what a service would do in-process with azure-storage-blob:
``generate_blob_sas`` + building the blob URL, one key at a time. The server runs as
a child process (``start_server_process``) so it does not share this process's GIL;
Azurite is started because registering a shared key proves it against the account.

Run: .venv/bin/python bench/bench_azure.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

from _common import machine, sign_urls_rate
from azure.storage.blob import generate_blob_sas

from bucketvault.clock import SystemClock
from bucketvault.models import CredentialKind, Method
from bucketvault.testing.emulators import EmulatorMissing, start_azurite
from bucketvault.testing.providers import Ruled, UrlRequest
from bucketvault.testing.server import start_server_process

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
BATCH = 1000
KEYS = [f"photos/2026/05/{i:07d}-IMG.jpg" for i in range(BATCH)]


def sdk_rate(seconds: float, account_url: str) -> float:
    """generate_blob_sas + URL building, in-process, one key at a time."""
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=600)
        for key in KEYS:
            sas = generate_blob_sas(
                ACCOUNT, "bench", key, account_key=KEY, permission="r", expiry=expiry
            )
            _url = f"{account_url}/bench/{quote(key, safe='~/')}?{sas}"
        done += len(KEYS)
    return done / (time.perf_counter() - start)


def provider_rate(seconds: float, account_url: str) -> float:
    """Our handle.sign in-process (no gRPC, no audit): the signer's own ceiling."""
    from azure.azurite_support import make_credential, make_mount, shared_key_secret  # noqa: PLC0415

    from bucketvault.providers.azure import build  # noqa: PLC0415
    from bucketvault.urlpolicy import UrlPolicy  # noqa: PLC0415

    built = build({}, SystemClock(), UrlPolicy(allow_insecure=True))
    assert built is not None
    # Through the rules every cloud passes (expiry cap), as the service signs.
    handle = Ruled(built, SystemClock()).open(
        make_credential(CredentialKind("AZURE_SHARED_KEY")), shared_key_secret(account_url)
    )
    mount = make_mount("bench")
    options = UrlRequest(method=Method.GET, expires_in=600)
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += len(handle.sign(mount, KEYS, options))
    return done / (time.perf_counter() - start)


def server_rate(seconds: float, account_url: str, threads: int) -> float:
    """SignURLs batches of 1000 through the real gRPC server (child process)."""
    with tempfile.TemporaryDirectory() as tmp, start_server_process(Path(tmp)) as srv:
        admin = srv.client()
        cred = admin.register_credential(
            "acme",
            "AZURE_SHARED_KEY",
            {"account_url": account_url, "account_name": ACCOUNT, "account_key": KEY},
        )
        mount = admin.create_mount(
            "acme",
            name="bench",
            bucket="bench",
            credential_id=cred.credential_id,
            max_ttl_seconds=3600,
            allowed_methods=("GET",),
            # The same keys are asked again and again: measure signing, not the URL cache.
            cache_stable_urls=False,
        )
        clients = [srv.client() for _ in range(threads)]
        for c in clients:  # warm up channels and the server's handle cache
            c.sign_urls("acme", mount.mount_id, KEYS, ttl_seconds=600)
        return sign_urls_rate(clients, "acme", mount.mount_id, KEYS, seconds)[0]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    # The suite's own launcher: a free port on 127.0.0.1, stopped by PID on exit.
    with ExitStack() as stack:
        try:
            azurite = stack.enter_context(start_azurite())
        except EmulatorMissing as exc:
            print(f"skipped: Azurite is not installed ({exc})")
            return 0
        account_url = f"{azurite.url}/{ACCOUNT}"
        print(f"machine: {machine()}")
        sdk = sdk_rate(args.seconds, account_url)
        print(f"azure-storage-blob generate_blob_sas + URL, in-process: {sdk:,.0f} URLs/s")
        ours = provider_rate(args.seconds, account_url)
        print(f"bucketvault azure handle.sign, in-process (no gRPC):    {ours:,.0f} URLs/s")
        served = server_rate(args.seconds, account_url, args.threads)
        print(
            f"bucketvault SignURLs via gRPC server, batches of {BATCH}, "
            f"{args.threads} client threads: {served:,.0f} URLs/s"
        )
        ratio = served / sdk
        print(
            f"ratio server/SDK: {ratio:.2f}x (target >= 2x); "
            f"in-process signer/SDK: {ours / sdk:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
