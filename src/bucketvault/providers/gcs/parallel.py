"""Spreads the signing of a large batch over threads.

OpenSSL's RSA signing releases the GIL, so threads give real parallelism. One pool
for the whole process, sized to the cores: several concurrent batches then share
the cores instead of oversubscribing them. Small batches stay on the caller's thread
because a hand-off costs more than a few signatures.

Remote signing (IAM Credentials signBlob, one HTTP call per URL) waits on the network,
not the cores: it has its own bounded pool (``map_remote``), shared by every batch of
the process so that concurrent batches together never hold more than REMOTE_WORKERS
calls open against Google's quota.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

# Below this many keys the hand-off to the pool costs more than it saves.
PARALLEL_MIN_KEYS = 32

REMOTE_WORKERS = 16

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_remote_pool: ThreadPoolExecutor | None = None


def workers() -> int:
    """How many threads the signing pool has (one per core)."""
    return max(1, os.cpu_count() or 1)


def _shared_pool() -> ThreadPoolExecutor:
    global _pool  # noqa: PLW0603 - one lazily created pool per process, by design
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="gcs-sign")
        return _pool


def _chunks(items: Sequence[str], count: int) -> list[Sequence[str]]:
    size = -(-len(items) // count)
    return [items[i : i + size] for i in range(0, len(items), size)]


def map_keys(fn: Callable[[str], str], keys: Sequence[str], *, parallel: bool) -> list[str]:
    """fn over keys, same order; on the shared pool in chunks when it pays off."""
    cores = workers()
    if not parallel or cores == 1 or len(keys) < PARALLEL_MIN_KEYS:
        return [fn(key) for key in keys]
    # Two chunks per core evens out chunks that finish at different times; the caller's
    # thread does one chunk itself rather than sit idle.
    chunks = _chunks(keys, cores * 2)
    pool = _shared_pool()
    futures = [pool.submit(_run, fn, chunk) for chunk in chunks[1:]]
    out = _run(fn, chunks[0])
    for future in futures:
        out.extend(future.result())
    return out


def _run(fn: Callable[[str], str], chunk: Sequence[str]) -> list[str]:
    return [fn(key) for key in chunk]


def _shared_remote_pool() -> ThreadPoolExecutor:
    global _remote_pool  # noqa: PLW0603 - one lazily created pool per process, by design
    with _lock:
        if _remote_pool is None:
            _remote_pool = ThreadPoolExecutor(
                max_workers=REMOTE_WORKERS, thread_name_prefix="gcs-signblob"
            )
        return _remote_pool


def map_remote(fn: Callable[[str], str], keys: Sequence[str], *, parallel: bool) -> list[str]:
    """fn over keys, same order, one call per key on the bounded remote pool.

    The first failure fails the batch: calls not yet started are cancelled, so a
    refused grant costs one round of calls, not a thousand.
    """
    if len(keys) <= 1:
        return [fn(key) for key in keys]
    pool = _shared_remote_pool()
    futures: list[Future[str]] = [pool.submit(fn, key) for key in keys]
    try:
        return [future.result() for future in futures]
    finally:
        for future in futures:
            future.cancel()


__all__ = ["PARALLEL_MIN_KEYS", "REMOTE_WORKERS", "map_keys", "map_remote", "workers"]
