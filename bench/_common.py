"""What every benchmark script shares: the machine line and the SignURLs load loop."""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from bucketvault.client import BucketVaultClient


def machine() -> str:
    """One line naming the machine, so numbers are read against it."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cpus, {cpu}, "
        f"Python {platform.python_version()}"
    )


def sign_urls_rate(
    clients: Sequence[BucketVaultClient],
    tenant: str,
    mount_id: str,
    keys: Sequence[str],
    seconds: float,
) -> tuple[float, float]:
    """(URLs/s delivered, p50 batch latency in ms): each client thread sends SignURLs
    batches of `keys` back to back for `seconds`."""
    counts = [0] * len(clients)
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    def run(slot: int) -> None:
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            counts[slot] += len(clients[slot].sign_urls(tenant, mount_id, keys, ttl_seconds=600))
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return sum(counts) / elapsed, latencies[len(latencies) // 2] * 1000 if latencies else 0.0
