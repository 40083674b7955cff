"""Unary SignURL at 8 callers: a fresh key per call vs a repeat of a recently signed key
(cache-stable URLs), against the health Check (the transport's floor), same run.

One server child process (its own GIL), an S3_ACCESS_KEY mount on a custom endpoint
never contacted (presigning is local). The three scenarios run interleaved for
--rounds rounds, so machine load hits them alike; the medians and the spread of the
rounds' ratios are printed, and one ``RESULT {json}`` line for bench/run.py.
Usage: .venv/bin/python bench/bench_unary.py [--seconds 3] [--callers 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import socket
import statistics
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
from _common import machine
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bucketvault.testing.server import start_server_process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU the server process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_counters(metrics_url: str) -> tuple[float, float, float, float]:
    """(records committed, group commits, seconds in commits, URL cache hits) from the
    server's /metrics."""
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()

    def value(pattern: str) -> float:
        found = re.search(pattern + r" ([0-9.e+-]+)", text)
        return float(found.group(1)) if found else 0.0

    return (
        value(r'bucketvault_audit_records_total\{outcome="committed"\}'),
        value(r"bucketvault_audit_commit_duration_seconds_count"),
        value(r"bucketvault_audit_commit_duration_seconds_sum"),
        value(r'bucketvault_url_cache_lookups_total\{result="hit"\}'),
    )


def run_callers(calls: list[Callable[[int], object]], seconds: float) -> dict[str, float]:
    """Calls/s and p50/p99 latency (ms) of len(calls) threads calling back to back."""
    latencies: list[list[float]] = [[] for _ in calls]
    stop_at = time.perf_counter() + seconds

    def run(slot: int) -> None:
        call, mine = calls[slot], latencies[slot]
        for i in itertools.count():
            if time.perf_counter() >= stop_at:
                return
            t0 = time.perf_counter()
            call(i)
            mine.append(time.perf_counter() - t0)

    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    merged = sorted(itertools.chain.from_iterable(latencies))
    return {
        "calls_per_s": len(merged) / elapsed,
        "p50_ms": merged[len(merged) // 2] * 1000,
        "p99_ms": merged[int(len(merged) * 0.99)] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    metrics = f"127.0.0.1:{_free_port()}"
    env = {"BUCKETVAULT_METRICS_LISTEN": metrics}
    with tempfile.TemporaryDirectory() as tmp, start_server_process(Path(tmp), env=env) as srv:
        admin = srv.client()
        cred = admin.register_credential(
            "bench",
            "S3_ACCESS_KEY",
            {
                "access_key_id": "AKIDBENCHMARK",
                "secret_access_key": "bench/secret+key",
                "endpoint_url": "http://127.0.0.1:9",
            },
        )
        mount = admin.create_mount(
            "bench",
            name="bench",
            bucket="bench",
            credential_id=cred.credential_id,
            region="us-east-1",
            max_ttl_seconds=3600,
            allowed_methods=("GET",),
        )
        mid = mount.mount_id
        pool = [srv.client() for _ in range(args.callers)]
        channels = [grpc.insecure_channel(srv.address) for _ in range(args.callers)]
        stubs = [health_pb2_grpc.HealthStub(ch) for ch in channels]
        check = health_pb2.HealthCheckRequest()
        current = [0]  # the round being run, part of every fresh key
        scenarios: dict[str, list[Callable[[int], object]]] = {
            "health_check": [lambda i, s=s: s.Check(check) for s in stubs],
            "sign_url_fresh_key": [
                lambda i, c=c, n=n: c.sign_url(
                    "bench", mid, f"fresh/{current[0]}/{n}/{i}.jpg", ttl_seconds=600
                )
                for n, c in enumerate(pool)
            ],
            "sign_url_repeat_key": [
                lambda i, c=c: c.sign_url("bench", mid, f"hot/{i % 50}.jpg", ttl_seconds=600)
                for c in pool
            ],
        }
        for c in pool:  # warm up channels, the handle and the hot keys
            for i in range(50):
                c.sign_url("bench", mid, f"hot/{i}.jpg", ttl_seconds=600)
        for s in stubs:
            s.Check(check)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in scenarios}
        for round_no in range(args.rounds):
            # Every round signs keys of its own: call numbers restart at 0 each round,
            # and a key signed in an earlier round would be a cache hit, not a fresh key.
            current[0] = round_no
            for name, calls in scenarios.items():
                cpu0, audit0 = (
                    server_cpu_seconds(srv.pid),
                    server_counters(f"http://{metrics}/metrics"),
                )
                mine0 = time.process_time()
                measured = run_callers(calls, args.seconds)
                mine = time.process_time() - mine0
                cpu, audit = (
                    server_cpu_seconds(srv.pid) - cpu0,
                    server_counters(f"http://{metrics}/metrics"),
                )
                deltas = (b - a for a, b in zip(audit0, audit, strict=True))
                records, commits, commit_s, hits = deltas
                calls_made = measured["calls_per_s"] * args.seconds
                measured["server_cpu_ms_per_call"] = 1000 * cpu / max(calls_made, 1)
                # The callers' own process (the SDK, gRPC client): they share the machine.
                measured["client_cpu_ms_per_call"] = 1000 * mine / max(calls_made, 1)
                measured["url_cache_hit_ratio"] = hits / max(calls_made, 1)
                measured["records_per_commit"] = records / commits if commits else 0.0
                measured["commit_ms"] = 1000 * commit_s / commits if commits else 0.0
                rounds[name].append(measured)
        for ch in channels:
            ch.close()
    result: dict[str, object] = {"callers": args.callers, "rounds": args.rounds}
    for name, measured in rounds.items():
        med = {k: statistics.median(r[k] for r in measured) for k in measured[0]}
        spread = [r["calls_per_s"] for r in measured]
        result[name] = {**med, "calls_per_s_rounds": spread}
        print(
            f"{name:<22} {med['calls_per_s']:>8,.0f} calls/s  p50 {med['p50_ms']:.2f} ms"
            f"  p99 {med['p99_ms']:.2f} ms  (rounds: {', '.join(f'{x:,.0f}' for x in spread)})"
        )
        print(
            f"{'':<22} CPU/call server {med['server_cpu_ms_per_call']:.2f} ms"
            f" client {med['client_cpu_ms_per_call']:.2f} ms"
            f"  audit {med['records_per_commit']:.1f} records/commit"
            f"  {med['commit_ms']:.2f} ms/commit"
            f"  URL cache hits {med['url_cache_hit_ratio']:.0%}"
        )
    health = rounds["health_check"]
    for name in ("sign_url_fresh_key", "sign_url_repeat_key"):
        ratios = [
            r["calls_per_s"] / h["calls_per_s"] for r, h in zip(rounds[name], health, strict=True)
        ]
        result[f"{name}_vs_health"] = ratios
        print(
            f"{name} / health Check: median {statistics.median(ratios):.2f} "
            f"(rounds {min(ratios):.2f}-{max(ratios):.2f})"
        )
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
