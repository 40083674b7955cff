"""SignURLs throughput (S3 URLs/s to a gRPC client) against boto3's presigner, same run.

Starts the real server in a child process (its own GIL), registers an S3_ACCESS_KEY
credential for a custom endpoint on 127.0.0.1 (never contacted: the mount names its
region, and presigning is local), and asks for batches of 1000 keys.
Usage: .venv/bin/python bench/bench_aws.py [--seconds 5] [--clients 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
from _common import machine, sign_urls_rate
from botocore.config import Config

from bucketvault.providers.aws.endpoints import custom_target
from bucketvault.providers.aws.sigv4 import (
    BatchPresigner,
    PresignParams,
    SigningIdentity,
    derive_signing_key,
)
from bucketvault.testing.server import start_server_process

ENDPOINT = "http://127.0.0.1:9"
ACCESS_KEY, SECRET_KEY = "AKIDBENCHMARK", "bench/secret+key"
KEYS = [f"photos/2026/{i % 12:02d}/IMG_{i:06d}.jpg" for i in range(900)] + [
    f"scans/patient {i}/é slice+{i}.dcm" for i in range(100)
]


def bench_boto3(seconds: float) -> float:
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for key in KEYS:
            client.generate_presigned_url(
                "get_object", Params={"Bucket": "bench", "Key": key}, ExpiresIn=600
            )
        done += len(KEYS)
    return done / (time.perf_counter() - start)


def bench_signer(seconds: float) -> float:
    identity = SigningIdentity(ACCESS_KEY, SECRET_KEY)
    target = custom_target(ENDPOINT, "bench", "us-east-1")
    key = derive_signing_key(SECRET_KEY, datetime.now(UTC).strftime("%Y%m%d"), "us-east-1", "s3")
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        params = PresignParams("GET", 600, datetime.now(UTC).replace(microsecond=0))
        url = BatchPresigner(target, identity, params, key).url
        for k in KEYS:
            url(k)
        done += len(KEYS)
    return done / (time.perf_counter() - start)


def bench_server(seconds: float, clients: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, start_server_process(Path(tmp)) as srv:
        admin = srv.client()
        cred = admin.register_credential(
            "bench",
            "S3_ACCESS_KEY",
            {
                "access_key_id": ACCESS_KEY,
                "secret_access_key": SECRET_KEY,
                "endpoint_url": ENDPOINT,
            },
            display_name="bench",
        )
        mount = admin.create_mount(
            "bench",
            name="bench",
            bucket="bench",
            credential_id=cred.credential_id,
            region="us-east-1",
            max_ttl_seconds=3600,
            allowed_methods=("GET",),
            # The same keys are asked again and again: measure signing, not the URL cache.
            cache_stable_urls=False,
        )
        for _ in range(3):  # warm-up: handle opened, caches filled
            admin.sign_urls("bench", mount.mount_id, KEYS, ttl_seconds=600)
        pool = [srv.client() for _ in range(clients)]
        return sign_urls_rate(pool, "bench", mount.mount_id, KEYS, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    boto_rate = bench_boto3(args.seconds)
    print(f"boto3 generate_presigned_url (in-process):       {boto_rate:>10,.0f} URLs/s")
    signer_rate = bench_signer(args.seconds)
    print(f"bucketvault SigV4 signer alone (in-process):     {signer_rate:>10,.0f} URLs/s")
    for clients in sorted({1, args.clients}):
        rate, p50 = bench_server(args.seconds, clients)
        print(
            f"SignURLs x1000 via gRPC, {clients} client(s):          {rate:>10,.0f} URLs/s"
            f"  (p50 batch {p50:.1f} ms)  = {rate / boto_rate:.1f}x boto3"
        )
    print(f"signer alone vs boto3: {signer_rate / boto_rate:.1f}x")


if __name__ == "__main__":
    main()
