"""GCS V4 signed URLs/s through SignURLs vs the floors and the SDK, in one run.

RSA: SignURLs (batches of 1000, GOOG4-RSA-SHA256) through the real server, against
raw RSA-2048 PKCS#1 v1.5 signatures/s with ``cryptography`` on every core (a thread
pool, one thread per core): the ceiling no RSA signer can pass. Target >= 0.85.

HMAC: SignURLs (batches of 1000, GOOG4-HMAC-SHA256) through the real server, against
google-cloud-storage's ``blob.generate_signed_url(version="v4")`` in-process. The SDK
cannot HMAC-sign (it only signs with a google-auth ``Signing`` credential and always
labels the URL GOOG4-RSA-SHA256), so the baseline is its RSA-free path: the SDK does
all its canonicalisation and URL building with a Signing credential whose
``sign_bytes`` is one HMAC-SHA256 over the string to sign with the GOOG4 derived key.
Target >= 20x.

The server runs as a child process (``start_server_process``) so it does not share
this process's GIL; note that the client threads of this process still compete with
it for the same cores.

Run: .venv/bin/python bench/bench_gcs.py [--seconds 5] [--threads 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import machine, sign_urls_rate
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from google.cloud import storage

from bucketvault.clock import SystemClock
from bucketvault.models import CredentialKind, Method
from bucketvault.providers.gcs import build
from bucketvault.testing.providers import RawSecret, Ruled, UrlRequest
from bucketvault.testing.server import start_server_process
from bucketvault.urlpolicy import UrlPolicy

BATCH = 1000
KEYS = [f"photos/2026/05/{i:07d}-IMG.jpg" for i in range(BATCH)]
ACCESS_ID = "GOOG1EBENCHACCESSIDXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
SECRET = "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ"
# A typical GOOG4 string to sign is about this long.
STRING_TO_SIGN = b"GOOG4-RSA-SHA256\n20260501T120000Z\n20260501/auto/storage/goog4_request\n" + (
    b"0" * 64
)


def sa_info(key: RSAPrivateKey) -> dict[str, str]:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "bench",
        "private_key_id": "bench",
        "private_key": pem,
        "client_email": "bench@bench.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


def raw_rsa_rate(key: RSAPrivateKey, seconds: float) -> float:
    """RSA-2048 signatures/s, one thread per core (cryptography releases the GIL)."""
    cores = os.cpu_count() or 1
    stop = time.perf_counter() + seconds

    def work(_: int) -> int:
        done = 0
        while time.perf_counter() < stop:
            for _ in range(50):
                key.sign(STRING_TO_SIGN, padding.PKCS1v15(), hashes.SHA256())
            done += 50
        return done

    start = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        total = sum(pool.map(work, range(cores)))
    return total / (time.perf_counter() - start)


class _HmacSigning:
    """A google-auth Signing credential whose sign_bytes is GOOG4 HMAC-SHA256."""

    signer_email = ACCESS_ID

    def __init__(self) -> None:
        self._day = ""
        self._key = b""

    def sign_bytes(self, message: bytes) -> bytes:
        day = message.split(b"\n")[2][:8].decode()
        if day != self._day:
            key = ("GOOG4" + SECRET).encode()
            for part in (day, "auto", "storage", "goog4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._day, self._key = day, key
        return hmac.new(self._key, message, hashlib.sha256).digest()


def sdk_hmac_rate(seconds: float) -> float:
    """google-cloud-storage generate_signed_url (v4) with an HMAC sign_bytes, in-process."""
    from google.auth.credentials import AnonymousCredentials, Signing  # noqa: PLC0415

    Signing.register(_HmacSigning)
    credentials: Any = _HmacSigning()
    client = storage.Client(project="bench", credentials=AnonymousCredentials())
    bucket = client.bucket("bench")
    blobs = [bucket.blob(k) for k in KEYS]
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for blob in blobs:
            blob.generate_signed_url(
                version="v4",
                expiration=timedelta(seconds=600),
                credentials=credentials,
                client=client,
            )
        done += len(blobs)
    return done / (time.perf_counter() - start)


def in_process_rate(kind: CredentialKind, secret: dict[str, str], seconds: float) -> float:
    """Our handle.sign in-process (no gRPC, no audit): the signer's own ceiling."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from bucketvault.models import (  # noqa: PLC0415
        Credential,
        CredentialState,
        Mount,
        MountPolicy,
    )

    built = build({}, SystemClock(), UrlPolicy())
    assert built is not None
    # Through the rules every cloud passes (expiry cap), as the service signs.
    provider = Ruled(built, SystemClock(), url_policy=UrlPolicy())
    when = datetime(2026, 1, 1, tzinfo=UTC)
    cred = Credential("c", "t", "d", kind, CredentialState.ACTIVE, "", {}, (), when, "bench")
    handle = provider.open(cred, RawSecret(kind, secret))
    mount = Mount(
        "m", "t", "m", "bench", "", "", "", "c", MountPolicy(3600, frozenset(Method)), 1, when, when
    )
    options = UrlRequest(method=Method.GET, expires_in=600)
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += len(handle.sign(mount, KEYS, options))
    return done / (time.perf_counter() - start)


@contextmanager
def served(kind: str, secret: dict[str, str], threads: int) -> Iterator[Callable[[float], float]]:
    """A real gRPC server (child process) and a function measuring SignURLs URLs/s on it."""
    with tempfile.TemporaryDirectory() as tmp, start_server_process(Path(tmp)) as srv:
        admin = srv.client()
        cred = admin.register_credential("acme", kind, secret)
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

        def measure(seconds: float) -> float:
            return sign_urls_rate(clients, "acme", mount.mount_id, KEYS, seconds)[0]

        yield measure


def sdk_rsa_rate(info: dict[str, str], seconds: float) -> float:
    """google-cloud-storage generate_signed_url (v4) with a service-account key, in-process."""
    from google.oauth2 import service_account  # noqa: PLC0415

    credentials = service_account.Credentials.from_service_account_info(info)
    client = storage.Client(project="bench", credentials=credentials)
    blobs = [client.bucket("bench").blob(k) for k in KEYS]
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for blob in blobs[:200]:
            blob.generate_signed_url(version="v4", expiration=timedelta(seconds=600))
        done += 200
    return done / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = sa_info(key)
    hmac_secret = {"access_id": ACCESS_ID, "secret": SECRET}
    print(f"machine: {machine()}")

    # The machine may be shared: alternate the floor and the server in short rounds and
    # compare each round with its own floor, so background load hits both sides alike.
    rsa_local = in_process_rate(CredentialKind("GCS_SERVICE_ACCOUNT"), info, args.seconds)
    print(f"bucketvault gcs RSA handle.sign, in-process (no gRPC): {rsa_local:,.0f} URLs/s")
    ratios = []
    with served("GCS_SERVICE_ACCOUNT", info, args.threads) as measure:
        for round_ in range(args.rounds):
            raw = raw_rsa_rate(key, args.seconds)
            rsa_served = measure(args.seconds)
            ratios.append(rsa_served / raw)
            print(
                f"round {round_ + 1}: raw RSA-2048 sign, cryptography, {os.cpu_count()} threads: "
                f"{raw:,.0f} sig/s; SignURLs RSA via gRPC server, batches of {BATCH}, "
                f"{args.threads} client threads: {rsa_served:,.0f} URLs/s; ratio {ratios[-1]:.2f}"
            )
    print(
        f"ratio RSA server/raw: median {statistics.median(ratios):.2f}, "
        f"best {max(ratios):.2f} (target >= 0.85)"
    )

    sdk = sdk_hmac_rate(args.seconds)
    print(f"google-cloud-storage generate_signed_url v4 with HMAC sign_bytes: {sdk:,.0f} URLs/s")
    sdk_rsa = sdk_rsa_rate(info, args.seconds)
    print(f"google-cloud-storage generate_signed_url v4 with the RSA key: {sdk_rsa:,.0f} URLs/s")
    hmac_local = in_process_rate(CredentialKind("GCS_HMAC"), hmac_secret, args.seconds)
    print(f"bucketvault gcs HMAC handle.sign, in-process (no gRPC): {hmac_local:,.0f} URLs/s")
    with served("GCS_HMAC", hmac_secret, args.threads) as measure:
        hmac_served = measure(args.seconds)
    print(
        f"bucketvault SignURLs HMAC via gRPC server, batches of {BATCH}, "
        f"{args.threads} client threads: {hmac_served:,.0f} URLs/s"
    )
    print(
        f"ratio HMAC server / SDK (HMAC sign_bytes): {hmac_served / sdk:.1f}x (target >= 20x); "
        f"in-process signer / SDK: {hmac_local / sdk:.1f}x; "
        f"server / SDK with an RSA key: {hmac_served / sdk_rsa:.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
