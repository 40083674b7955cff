"""ListPrefix entries/s to a gRPC client against boto3 listing the same emulator, and the
server's peak RSS over a listing of --small keys vs --large keys, same run.

moto server holds two buckets (--small and --large keys, empty bodies). Putting keys
through moto's HTTP API runs at ~250/s on a 2-core machine (200k keys: ~15 min), so a
child process fills moto's backend in-process and then serves it on 127.0.0.1 with
moto's own ThreadedMotoServer: the listing path measured is moto's real HTTP one.
bucketvault serve runs in another child (its own GIL) with an S3_ACCESS_KEY mount per
bucket. Each round lists the small bucket three ways, interleaved so machine load hits
them alike: boto3's list_objects_v2 paginator, ListPrefix, ListPrefix with sign_ttl
(each entry signed). Then the server's peak RSS (VmHWM, reset through
/proc/PID/clear_refs before each listing) over a full ListPrefix of each bucket.
Prints medians, the rounds' spread, and one ``RESULT {json}`` line for bench/run.py.
Usage: .venv/bin/python bench/bench_list.py [--small 10000] [--large 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import boto3
from _common import machine
from botocore.config import Config
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer

from bucketvault.testing.ports import free_port, http_answers, stop_process, wait_until_ready
from bucketvault.testing.server import start_server_process

SMALL, LARGE = "bench-small", "bench-large"
ACCESS_KEY, SECRET_KEY = "AKIDBENCHMARK", "bench/secret+key"
PAGE = 1000


def moto_child(port: int, small: int, large: int) -> None:
    """Fill moto's S3 backend in this process, then serve it over HTTP until killed."""
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for bucket, count in ((SMALL, small), (LARGE, large)):
        backend.create_bucket(bucket, "us-east-1")
        for i in range(count):
            # Realistic key shapes: a date path and a numbered image name.
            backend.put_object(bucket, f"photos/{i % 12:02d}/IMG_{i:07d}.jpg", b"")
    # werkzeug logs every request on stderr: thousands of lines per listing.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print("READY", flush=True)
    while True:
        time.sleep(3600)


def boto3_rate(endpoint: str, bucket: str) -> float:
    """Entries/s of boto3's list_objects_v2 paginator over the whole bucket."""
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    start, n = time.perf_counter(), 0
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": PAGE}
    ):
        n += len(page.get("Contents", ()))
    return n / (time.perf_counter() - start)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def reset_peak(pid: int) -> bool:
    """Reset the process's peak RSS to its current RSS (Linux >= 4.0); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--moto-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.moto_child:
        moto_child(args.moto_child, args.small, args.large)
        return
    print(f"machine: {machine()}")
    port = free_port()
    t0 = time.perf_counter()
    sizes = ("--small", str(args.small), "--large", str(args.large))
    moto = subprocess.Popen(
        [sys.executable, __file__, "--moto-child", str(port), *sizes],
        stdout=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_until_ready(moto, http_answers(endpoint + "/moto-api/"), name="moto", timeout=1800)
        print(
            f"moto filled with {args.small:,} + {args.large:,} keys in "
            f"{time.perf_counter() - t0:.0f} s"
        )
        result = measure(args, endpoint)
    finally:
        stop_process(moto)
    print("RESULT " + json.dumps(result))


def measure(args: argparse.Namespace, endpoint: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, start_server_process(Path(tmp)) as srv:
        admin = srv.client()
        cred = admin.register_credential(
            "bench",
            "S3_ACCESS_KEY",
            {
                "access_key_id": ACCESS_KEY,
                "secret_access_key": SECRET_KEY,
                "endpoint_url": endpoint,
            },
        )
        mounts = {
            bucket: admin.create_mount(
                "bench",
                name=bucket,
                bucket=bucket,
                credential_id=cred.credential_id,
                region="us-east-1",
                max_ttl_seconds=3600,
                allowed_methods=("GET",),
            ).mount_id
            for bucket in (SMALL, LARGE)
        }
        client = srv.client()

        def list_rate(bucket: str, sign_ttl: int) -> float:
            start, n = time.perf_counter(), 0
            for page in client.list_prefix(
                "bench", mounts[bucket], page_size=PAGE, sign_ttl_seconds=sign_ttl
            ):
                n += len(page.entries)
            return n / (time.perf_counter() - start)

        scenarios: dict[str, Callable[[], float]] = {
            "boto3_paginator": lambda: boto3_rate(endpoint, SMALL),
            "list_prefix": lambda: list_rate(SMALL, 0),
            "list_prefix_signed": lambda: list_rate(SMALL, 600),
        }
        list_rate(SMALL, 600)  # warm up: channel, session, handle, moto's caches
        rounds: dict[str, list[float]] = {name: [] for name in scenarios}
        for _ in range(args.rounds):
            for name, run in scenarios.items():
                rounds[name].append(run())
        result: dict[str, object] = {"small": args.small, "large": args.large, "page": PAGE}
        result["rounds"] = args.rounds
        for name, rates in rounds.items():
            result[name] = {"entries_per_s": statistics.median(rates), "rounds": rates}
            print(
                f"{name:<20} {statistics.median(rates):>9,.0f} entries/s "
                f"(rounds: {', '.join(f'{x:,.0f}' for x in rates)})"
            )
        base = rounds["boto3_paginator"]
        for name in ("list_prefix", "list_prefix_signed"):
            ratios = [r / b for r, b in zip(rounds[name], base, strict=True)]
            result[f"{name}_vs_boto3"] = ratios
            print(
                f"{name} / boto3: median {statistics.median(ratios):.2f} "
                f"(rounds {min(ratios):.2f}-{max(ratios):.2f})"
            )
        # Peak RSS: signed listings (the heavier path), small then large, HWM reset before each.
        peaks: dict[str, int] = {}
        rates: dict[str, float] = {}
        for bucket in (SMALL, LARGE):
            resettable = reset_peak(srv.pid)
            rates[bucket] = list_rate(bucket, 600)
            peaks[bucket] = peak_rss_kib(srv.pid)
            if not resettable:
                print("clear_refs refused: VmHWM is the lifetime peak")
        ratio = peaks[LARGE] / peaks[SMALL]
        result["peak_rss_kib"] = {"small": peaks[SMALL], "large": peaks[LARGE], "ratio": ratio}
        result["large_list_prefix_signed_entries_per_s"] = rates[LARGE]
        print(
            f"server peak RSS, signed listing: {args.small:,} keys {peaks[SMALL] / 1024:.1f} MiB,"
            f" {args.large:,} keys {peaks[LARGE] / 1024:.1f} MiB, ratio {ratio:.3f}"
            f" ({rates[LARGE]:,.0f} entries/s over the large bucket)"
        )
    return result


if __name__ == "__main__":
    main()
