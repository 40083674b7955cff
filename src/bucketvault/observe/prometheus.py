"""Metrics in a CollectorRegistry of their own (one per Service, so that several servers
in one process never share or clash), served on /metrics by a small threaded server."""

from __future__ import annotations

import socket
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

# RPCs run from sub-millisecond (a cached signature) to a long listing stream.
RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class _UrlCacheLookups(Collector):
    """Stable-URL cache lookups by result, from the cache's own counters."""

    def __init__(self, lookups: Callable[[], tuple[int, int]]) -> None:
        self._lookups = lookups

    def collect(self) -> Iterable[Metric]:
        hits, misses = self._lookups()
        family = CounterMetricFamily(
            "bucketvault_url_cache_lookups",
            "Stable-URL cache lookups, one per key: a hit is served without signing",
            labels=["result"],
        )
        family.add_metric(["hit"], hits)
        family.add_metric(["miss"], misses)
        yield family


class _Expiries(Collector):
    """The soonest expiry per label value of what holders hold, computed at scrape time."""

    def __init__(self, name: str, documentation: str, label: str) -> None:
        self._name, self._documentation, self._label = name, documentation, label
        self._lock = threading.Lock()
        # Weak: a holder dropped without being closed must not pin the gauge forever.
        self._held: weakref.WeakKeyDictionary[Any, tuple[str, float]] = weakref.WeakKeyDictionary()

    def set(self, holder: object, value: str, expires_at: float | None) -> None:
        with self._lock:
            if expires_at is None:
                self._held.pop(holder, None)
            else:
                self._held[holder] = (value, expires_at)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            held = list(self._held.values())
        soonest: dict[str, float] = {}
        for value, at in held:
            soonest[value] = min(at, soonest.get(value, at))
        family = GaugeMetricFamily(self._name, self._documentation, labels=[self._label])
        for value, at in sorted(soonest.items()):
            family.add_metric([value], at)
        yield family


class PrometheusMetrics:
    """Metrics backed by prometheus_client, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self._rpcs = Counter(
            "bucketvault_rpcs",
            "RPCs served, by method and status code",
            ["method", "code"],
            registry=r,
        )
        self._rpc_seconds = Histogram(
            "bucketvault_rpc_duration_seconds",
            "RPC latency by method (a streaming RPC: its whole stream)",
            ["method"],
            buckets=RPC_BUCKETS,
            registry=r,
        )
        self._urls = Counter(
            "bucketvault_urls_signed", "URLs signed, by cloud family", ["family"], registry=r
        )
        self._cache = Counter(
            "bucketvault_cache_requests",
            "Refresh-ahead cache lookups: hit (cached value served) or miss (caller waited)",
            ["cache", "result"],
            registry=r,
        )
        self._refresh = Counter(
            "bucketvault_cache_refreshes",
            "Fetches behind the caches (STS AssumeRole, token and delegation-key calls)",
            ["cache", "mode", "outcome"],
            registry=r,
        )
        self._refresh_seconds = Histogram(
            "bucketvault_cache_refresh_duration_seconds",
            "Latency of the fetches behind the caches",
            ["cache"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self._kms = Counter(
            "bucketvault_kek_operations",
            "KEK wraps and unwraps, by backend and outcome",
            ["operation", "backend", "outcome"],
            registry=r,
        )
        self._kms_seconds = Histogram(
            "bucketvault_kek_operation_duration_seconds",
            "KEK wrap and unwrap latency",
            ["operation", "backend"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self._commit_seconds = Histogram(
            "bucketvault_audit_commit_duration_seconds",
            "Audit group-commit latency (one transaction, many records)",
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self._commit_rows = Counter(
            "bucketvault_audit_records",
            "Audit records committed or failed",
            ["outcome"],
            registry=r,
        )
        self._queue = Gauge(
            "bucketvault_audit_queue_depth", "Audit records waiting for the writer", registry=r
        )
        self._link_opens = Counter(
            "bucketvault_link_opens",
            "Stable-link opens answered, by mode (token, network) and outcome",
            ["mode", "outcome"],
            registry=r,
        )
        self._in_flight = Gauge("bucketvault_rpcs_in_flight", "RPCs being served", registry=r)
        self._expiries = _Expiries(
            "bucketvault_cache_soonest_expiry_timestamp_seconds",
            "Unix time at which the soonest-expiring value of each refresh-ahead cache "
            "(AWS sessions, GCS tokens, Azure user delegation keys) expires",
            "cache",
        )
        r.register(self._expiries)
        self._credential_expiries = _Expiries(
            "bucketvault_credential_soonest_expiry_timestamp_seconds",
            "Unix time at which the soonest-expiring credential in use that expires by "
            "itself (a customer SAS) expires, by cloud family",
            "family",
        )
        r.register(self._credential_expiries)

    def rpc(self, method: str, code: str, seconds: float) -> None:
        """Count and time one RPC."""
        self._rpcs.labels(method, code).inc()
        self._rpc_seconds.labels(method).observe(seconds)

    def urls_signed(self, family: str, count: int) -> None:
        """Count signed URLs."""
        self._urls.labels(family).inc(count)

    def cache(self, cache: str, result: str) -> None:
        """Count one cache lookup."""
        self._cache.labels(cache, result).inc()

    def refresh(self, cache: str, mode: str, outcome: str, seconds: float) -> None:
        """Count and time one fetch."""
        self._refresh.labels(cache, mode, outcome).inc()
        self._refresh_seconds.labels(cache).observe(seconds)

    def expiry(self, holder: object, cache: str, expires_at: float | None) -> None:
        """Track the value holder holds."""
        self._expiries.set(holder, cache, expires_at)

    def credential_expiry(self, holder: object, family: str, expires_at: float | None) -> None:
        """Track the expiry of a credential in use."""
        self._credential_expiries.set(holder, family, expires_at)

    def kms(self, operation: str, backend: str, outcome: str, seconds: float) -> None:
        """Count and time one KEK operation."""
        self._kms.labels(operation, backend, outcome).inc()
        self._kms_seconds.labels(operation, backend).observe(seconds)

    def audit_commit(self, seconds: float, rows: int, ok: bool) -> None:
        """Time one group commit and count its records."""
        self._commit_seconds.observe(seconds)
        self._commit_rows.labels("committed" if ok else "failed").inc(rows)

    def url_cache(self, lookups: Callable[[], tuple[int, int]]) -> None:
        """Read the stable-URL cache's counters at scrape time (no cost per lookup)."""
        self.registry.register(_UrlCacheLookups(lookups))

    def audit_queue(self, depth: Callable[[], int]) -> None:
        """Read the audit queue depth at scrape time."""
        self._queue.set_function(depth)

    def link_open(self, mode: str, outcome: str) -> None:
        """Count one link open."""
        self._link_opens.labels(mode, outcome).inc()

    def drain(self, in_flight: Callable[[], int]) -> None:
        """Read the in-flight RPC count at scrape time."""
        self._in_flight.set_function(in_flight)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


def _only_metrics(app: Callable[..., Any]) -> Callable[..., Any]:
    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return iter([b"not found: the metrics are on /metrics\n"])
        return iter(app(environ, start_response))

    return serve


class _V6Server(ThreadingWSGIServer):
    address_family = socket.AF_INET6


class MetricsServer:
    """/metrics of one registry over HTTP, on a daemon thread; stop() closes it."""

    def __init__(self, registry: CollectorRegistry, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        v6 = host.startswith("[")
        self._httpd = make_server(
            host.strip("[]"),
            int(port),
            _only_metrics(make_wsgi_app(registry)),
            _V6Server if v6 else ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_port
        self.host = host
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="metrics-http", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Where to scrape."""
        return f"http://{self.host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


__all__ = ["MetricsServer", "PrometheusMetrics"]
