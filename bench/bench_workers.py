"""Unary SignURL calls/s against `serve --workers 2` vs `serve --workers 1`, same run.

Both servers run at once as child processes (the supervisor and its workers); the load
comes from --procs separate client processes with --callers threads in all, each thread on
a channel of its own (a local subchannel pool: its own TCP connection, so SO_REUSEPORT
spreads the connections over the workers). The two configurations alternate for --rounds
rounds so machine load hits them alike; the ratio of the medians, the per-round ratios and
how the 2-worker server's calls split over its workers (from its audit log) are printed,
and one ``RESULT {json}`` line for bench/run.py. On a 2-core box the clients share the
cores with the server, so the ratio here is a floor, not what a bigger machine gives.
Usage: .venv/bin/python bench/bench_workers.py [--seconds 3] [--callers 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing as mp
import statistics
import tempfile
import threading
import time
from contextlib import ExitStack
from multiprocessing.connection import Connection
from pathlib import Path

import grpc
from _common import machine

from bucketvault.client import BucketVaultClient
from bucketvault.testing.server import RunningServer, start_server_process

TENANT = "bench"


def _client_process(conn: Connection, threads: int) -> None:
    """Serve ("run", address, token, mount_id, start_at, seconds) -> (calls, latencies)."""
    clients: dict[str, list[BucketVaultClient]] = {}
    while True:
        msg = conn.recv()
        if msg is None:
            break
        _, address, token, mount_id, start_at, seconds = msg
        if address not in clients:
            clients[address] = [
                BucketVaultClient(
                    grpc.insecure_channel(address, [("grpc.use_local_subchannel_pool", 1)]),
                    token,
                )
                for _ in range(threads)
            ]
            for c in clients[address]:  # connect and warm the handle
                for i in range(20):
                    c.sign_url(TENANT, mount_id, f"warm/{i}.jpg", ttl_seconds=600)
        counts = [0] * threads
        latencies: list[list[float]] = [[] for _ in range(threads)]

        time.sleep(max(start_at - time.time(), 0))
        stop_at = start_at + seconds
        pool = [
            threading.Thread(target=_run, args=(i, c, mount_id, stop_at, counts, latencies))
            for i, c in enumerate(clients[address])
        ]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        conn.send((sum(counts), [x for xs in latencies for x in xs]))


def _run(
    slot: int,
    c: BucketVaultClient,
    mount: str,
    stop_at: float,
    counts: list[int],
    latencies: list[list[float]],
) -> None:
    """One caller: fresh keys back to back until stop_at (wall clock, shared by processes)."""
    n = 0
    while (t0 := time.time()) < stop_at:
        c.sign_url(TENANT, mount, f"fresh/{slot}/{n}.jpg", ttl_seconds=600)
        latencies[slot].append(time.time() - t0)
        n += 1
    counts[slot] = n


def _prepare(srv: RunningServer) -> str:
    with srv.client() as admin:
        cred = admin.register_credential(
            TENANT,
            "S3_ACCESS_KEY",
            {
                "access_key_id": "AKIDBENCHMARK",
                "secret_access_key": "bench/secret+key",
                "endpoint_url": "http://127.0.0.1:9",
            },
        )
        mount = admin.create_mount(
            TENANT,
            name="bench",
            bucket="bench",
            credential_id=cred.credential_id,
            region="us-east-1",
            allowed_methods=("GET",),
        )
    return mount.mount_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    args, _ = parser.parse_known_args()
    print(f"machine: {machine()}")
    ctx = mp.get_context("spawn")
    per_proc = max(args.callers // args.procs, 1)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        servers = {
            n: stack.enter_context(
                start_server_process(Path(tmp), env={"BUCKETVAULT_WORKERS": str(n)})
            )
            for n in (1, 2)
        }
        mounts = {n: _prepare(srv) for n, srv in servers.items()}
        conns = []
        for _ in range(args.procs):
            parent, child = ctx.Pipe()
            ctx.Process(target=_client_process, args=(child, per_proc), daemon=True).start()
            conns.append(parent)
        rounds: dict[int, list[dict[str, float]]] = {1: [], 2: []}
        try:
            for _ in range(args.rounds):
                for n, srv in servers.items():
                    # Connections and warm-up happen before start_at on the first round.
                    start_at = time.time() + (8.0 if not rounds[n] else 0.5)
                    for c in conns:
                        c.send(
                            ("run", srv.address, srv.admin_token, mounts[n], start_at, args.seconds)
                        )
                    got = [c.recv() for c in conns]
                    lat = sorted(x for _, xs in got for x in xs)
                    rounds[n].append(
                        {
                            "calls_per_s": sum(k for k, _ in got) / args.seconds,
                            "p50_ms": lat[len(lat) // 2] * 1000,
                            "p99_ms": lat[int(len(lat) * 0.99)] * 1000,
                        }
                    )
        finally:
            for c in conns:
                c.send(None)
        with servers[2].client() as auditor:
            split = collections.Counter(
                r.writer_id for r in auditor.query_audit(TENANT, action="signer.sign")
            )
    result: dict[str, object] = {
        "callers": per_proc * args.procs,
        "client_processes": args.procs,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "calls_by_writer_2_workers": dict(sorted(split.items())),
    }
    for n, measured in rounds.items():
        med = {k: statistics.median(r[k] for r in measured) for k in measured[0]}
        spread = [r["calls_per_s"] for r in measured]
        result[f"workers_{n}"] = {**med, "calls_per_s_rounds": spread}
        print(
            f"unary SignURL, --workers {n}: {med['calls_per_s']:>7,.0f} calls/s  "
            f"p50 {med['p50_ms']:.2f} ms  p99 {med['p99_ms']:.2f} ms  "
            f"(rounds: {', '.join(f'{x:,.0f}' for x in spread)})"
        )
    ratios = [
        b["calls_per_s"] / a["calls_per_s"] for a, b in zip(rounds[1], rounds[2], strict=True)
    ]
    result["workers_2_vs_1"] = ratios
    print(
        f"--workers 2 / --workers 1: median {statistics.median(ratios):.2f} "
        f"(rounds {min(ratios):.2f}-{max(ratios):.2f}); "
        f"{per_proc * args.procs} callers in {args.procs} client processes; "
        f"2-worker calls by writer: {dict(sorted(split.items()))}"
    )
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
