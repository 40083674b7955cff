"""The composition root: config in, a running service out. The only place that picks
implementations for the seams (store, KEK provider, cloud providers, audit sinks,
metrics and traces)."""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2

from bucketvault.app import App, build_app
from bucketvault.app.servicekeys import ServiceKeys
from bucketvault.audit import AuditLog, JsonLinesSink
from bucketvault.audit.checkpointer import Checkpointer, Job, Periodic
from bucketvault.audit.retention import Retention
from bucketvault.audit.sinks import AuditSink
from bucketvault.auth.authn import hash_token
from bucketvault.auth.reload import PolicyWatcher
from bucketvault.clock import Clock, SystemClock
from bucketvault.config import Config
from bucketvault.crypto.envelope import Envelope
from bucketvault.crypto.keys import KeyRing, key_provider_from_uri
from bucketvault.grpc.limits import CallLimiter
from bucketvault.grpc.observing import CallObserver, DrainGate
from bucketvault.grpc.server import build_grpc_server
from bucketvault.grpc.servicers import SERVICE_NAMES
from bucketvault.grpc.tls import listener_credentials
from bucketvault.hardening import forbid_core_dumps
from bucketvault.http.server import HttpServer
from bucketvault.http.wiring import bind_links, serve_links
from bucketvault.observe.keys import ObservedKeyProvider, kek_backend
from bucketvault.observe.metrics import NO_METRICS, Metrics
from bucketvault.observe.tracing import Tracer, build_tracer
from bucketvault.providers.base import CloudProvider
from bucketvault.providers.registry import ProviderRegistry, build_providers
from bucketvault.store import open_store
from bucketvault.store.base import Store
from bucketvault.storehealth import PROBE_SECONDS, HasDependencies, StoreHealth

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin.token"
# Retention runs this often; the first run is one period after start.
RETENTION_PERIOD = timedelta(hours=1)
# A revoked credential's open handle (its decrypted secret) lives at most this long in a
# replica that no longer serves it (requests re-read the credential's state every time).
HANDLE_SWEEP_PERIOD = timedelta(seconds=30)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def bootstrap_admin(config: Config) -> Path | None:
    """First run of the embedded default: an admin token (0600) and a policy naming it.

    Only when the policy file is missing and lives in the data directory: a deployment
    that names its own policy file never gets a token minted behind its back.
    """
    if config.policy_file.exists() or config.policy_file.parent != config.data_dir:
        return None
    token = "bv_" + secrets.token_urlsafe(32)
    token_path = config.data_dir / ADMIN_TOKEN_FILE
    _write_private(token_path, token + "\n")
    policy = {
        "principals": [
            {
                "name": "admin",
                "token_sha256": hash_token(token),
                "roles": ["signer", "operator", "auditor"],
                "tenants": ["*"],
            }
        ]
    }
    _write_private(config.policy_file, json.dumps(policy, indent=2) + "\n")
    return token_path


@dataclass
class Service:
    config: Config
    app: App
    store: Store
    audit: AuditLog
    server: grpc.Server
    port: int
    checkpointer: Checkpointer
    periodic: Periodic
    sinks: list[AuditSink] = field(default_factory=list)
    # Reloads the policy file when it changes; reload_policy() forces it (SIGHUP).
    policy: PolicyWatcher | None = None

    def reload_policy(self) -> bool:
        """Read the policy file again; a bad file keeps the policy serving (False)."""
        return self.policy.reload() if self.policy is not None else False

    retention: Retention | None = None
    metrics: Metrics = NO_METRICS
    # The /metrics listener (prometheus.MetricsServer) when BUCKETVAULT_METRICS_LISTEN is set.
    metrics_server: Any = None
    tracer: Tracer | None = None
    health: health.HealthServicer | None = None
    gate: DrainGate | None = None
    stopped: bool = False
    # The stable-link HTTP listener, when BUCKETVAULT_HTTP_LISTEN is set.
    http: HttpServer | None = None

    @property
    def address(self) -> str:
        host = self.config.listen.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    def stop(self, grace: float | None = 2.0) -> None:
        """Stop serving, then flush the audit log, sign its head and close the store.

        Once: a drained shutdown has already done it when the caller's own stop runs."""
        if self.stopped:
            return
        self.stopped = True
        if self.policy is not None:
            self.policy.stop()
        if self.http is not None:
            self.http.stop()
        self.server.stop(grace).wait()
        self.app.close()
        self.periodic.close()
        self.audit.close()
        # After the last row is committed: the shutdown checkpoint covers the whole run.
        self.checkpointer.checkpoint_now()
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                close()
        self.store.close()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        if self.tracer is not None:
            self.tracer.close()

    def shutdown(self, drain_seconds: float) -> dict[str, float]:
        """SIGTERM: NOT_SERVING at once, no new calls, in-flight calls and streams get
        drain_seconds to finish, then stop() (audit flushed and checkpointed).

        Returns what was drained (also logged, in one line)."""
        start = time.monotonic()
        if self.health is not None:
            self.health.enter_graceful_shutdown()
        in_flight = self.gate.close() if self.gate is not None else 0
        idle = self.gate.wait_idle(drain_seconds) if self.gate is not None else True
        left = self.gate.in_flight if self.gate is not None else 0
        remaining = max(drain_seconds - (time.monotonic() - start), 0.0)
        # Idle: a moment for the last answers to leave; else what is left of the bound,
        # after which grpc cancels the stragglers.
        self.stop(grace=min(remaining, 1.0) if idle else remaining)
        report = {
            "in_flight": in_flight,
            "finished": in_flight - left,
            "cancelled": left,
            "refused": self.gate.refused if self.gate is not None else 0,
            "seconds": round(time.monotonic() - start, 3),
        }
        log.info(
            "drained: %d in flight at shutdown, %d finished, %d cancelled, %d refused, %.3fs",
            report["in_flight"],
            report["finished"],
            report["cancelled"],
            report["refused"],
            report["seconds"],
            extra={"drain": report},
        )
        return report


def prepare(config: Config, *, clock: Clock | None = None) -> None:
    """The first-run state every process of `serve --workers` shares, created once before
    any worker starts: the data directory, the admin token and policy, the local KEK, the
    store's migrations and the service keys (workers racing to create them could each
    mint their own registration or audit key)."""
    forbid_core_dumps()  # ensure() decrypts the service keys here too
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    bootstrap_admin(config)
    keyring = KeyRing(
        key_provider_from_uri(config.kek_uri, config.env),
        [key_provider_from_uri(u, config.env) for u in config.previous_kek_uris],
    )
    store = open_store(config.store_url)
    try:
        ServiceKeys(store, Envelope(keyring), clock or SystemClock()).ensure()
    finally:
        store.close()


def _report_health(servicer: health.HealthServicer, gate: DrainGate, serving: bool) -> None:
    """Every service's health, as the store allows; a draining server stays NOT_SERVING."""
    if serving and gate.closed:
        return
    response = health_pb2.HealthCheckResponse
    status = response.SERVING if serving else response.NOT_SERVING
    for name in ("", *SERVICE_NAMES):
        servicer.set(name, status)


def _watch_dependencies(registry: ProviderRegistry, servicer: health.HealthServicer) -> None:
    """Each provider's remote dependency (STS) under its own health name: UNKNOWN until
    its first call, then SERVING while it answers, NOT_SERVING after an outage. The
    process's health ("" and the services) follows the store only (storehealth.py)."""
    response = health_pb2.HealthCheckResponse
    for provider in registry.providers:
        if not isinstance(provider, HasDependencies):
            continue
        for dependency in provider.dependencies():

            def report(up: bool | None, name: str = dependency.health_name) -> None:
                status = (
                    response.UNKNOWN
                    if up is None
                    else (response.SERVING if up else response.NOT_SERVING)
                )
                servicer.set(name, status)

            dependency.watch(report)


def _metrics(config: Config) -> tuple[Metrics, Any]:
    """Prometheus metrics and their listener when BUCKETVAULT_METRICS_LISTEN is set."""
    if not config.metrics_listen:
        return NO_METRICS, None
    from bucketvault.observe.prometheus import MetricsServer, PrometheusMetrics  # noqa: PLC0415

    metrics = PrometheusMetrics()
    return metrics, MetricsServer(metrics.registry, config.metrics_listen)


def build_service(
    config: Config,
    *,
    clock: Clock | None = None,
    providers: Sequence[CloudProvider] | None = None,
    server_credentials: grpc.ServerCredentials | None = None,
    tracer: Tracer | None = None,
    reuse_port: bool = False,
) -> Service:
    """Wire every seam and start serving.

    server_credentials, when given, replace the ones config.tls describes (and then no
    caller is named by a client certificate). tracer, when given, replaces the one
    OTEL_EXPORTER_OTLP_ENDPOINT describes (tests inject an in-memory exporter).
    reuse_port: bind the gRPC port with SO_REUSEPORT (a worker of `serve --workers`).
    """
    clock = clock or SystemClock()
    forbid_core_dumps()  # before any secret is in memory
    # First: a bad certificate or key stops start-up before any store is opened.
    if server_credentials is not None:
        credentials: grpc.ServerCredentials | None = server_credentials
        client_certs = False
    else:
        credentials = listener_credentials(config)
        client_certs = config.tls is not None and config.tls.client_ca_file is not None
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    bootstrap_admin(config)
    watcher = PolicyWatcher.open(config.policy_file)
    authenticator = watcher.authenticator
    tracer = tracer or build_tracer(config.env)
    metrics, metrics_server = _metrics(config)

    def kek(uri: str) -> ObservedKeyProvider:
        return ObservedKeyProvider(
            key_provider_from_uri(uri, config.env), kek_backend(uri), metrics, tracer
        )

    keyring = KeyRing(kek(config.kek_uri), [kek(u) for u in config.previous_kek_uris])
    store = open_store(config.store_url)
    envelope = Envelope(keyring)
    service_keys = ServiceKeys(store, envelope, clock)
    service_keys.ensure()
    registry = (
        build_providers(config.env, clock, config.url_policy)
        if providers is None
        else ProviderRegistry(providers)
    )
    sinks: list[AuditSink] = [JsonLinesSink(config.audit_jsonl)] if config.audit_jsonl else []
    audit = AuditLog(
        store,
        clock,
        writer_id=config.audit_writer_id or None,
        sinks=sinks,
        on_commit=metrics.audit_commit,
    )
    metrics.audit_queue(audit.queue_depth)
    signer = service_keys.audit_signer()
    checkpointer = Checkpointer(audit, store, signer, clock)
    # The checkpointer keeps its own interval; it is asked every poll.
    jobs = [Job("checkpoint", timedelta(0), checkpointer.tick)]
    retention = None
    if config.audit_retention_days:
        retention = Retention(
            store,
            signer,
            service_keys.audit_keys(),
            clock,
            max_age=timedelta(days=config.audit_retention_days),
            archive_dir=config.audit_archive_dir,
        )
        jobs.append(Job("retention", RETENTION_PERIOD, retention.run))
    http, link_settings = bind_links(config, reuse_port=reuse_port)
    app = build_app(
        config,
        store,
        envelope,
        service_keys,
        registry,
        audit,
        clock,
        metrics,
        link_settings=link_settings,
    )
    jobs.append(Job("evict-revoked-handles", HANDLE_SWEEP_PERIOD, app.handles.evict_revoked))
    gate = DrainGate()
    metrics.drain(lambda: gate.in_flight)
    metrics.url_cache(lambda: (app.handles.urls.hits, app.handles.urls.misses))
    health_servicer = health.HealthServicer()
    store_health = StoreHealth(
        lambda: store.audit_head(audit.writer_id),
        lambda ok: _report_health(health_servicer, gate, ok),
    )
    jobs.append(Job("store-health", timedelta(seconds=PROBE_SECONDS), store_health.check))
    periodic = Periodic(clock, jobs)
    server, port = build_grpc_server(
        app,
        authenticator,
        config.listen,
        workers=config.grpc_workers,
        credentials=credentials,
        client_certs=client_certs,
        hook=CallObserver(metrics, tracer),
        outer=(gate,),
        health_servicer=health_servicer,
        limits=CallLimiter(config.limits),
        max_receive_bytes=config.grpc_max_receive_bytes,
        max_send_bytes=config.grpc_max_send_bytes,
        reuse_port=reuse_port,
    )
    _watch_dependencies(registry, health_servicer)
    server.start()
    serve_links(http, config, app, metrics)
    watcher.start()
    return Service(
        config,
        app,
        store,
        audit,
        server,
        port,
        checkpointer,
        periodic,
        sinks,
        policy=watcher,
        retention=retention,
        metrics=metrics,
        metrics_server=metrics_server,
        tracer=tracer,
        health=health_servicer,
        gate=gate,
        http=http,
    )


__all__ = ["ADMIN_TOKEN_FILE", "Service", "bootstrap_admin", "build_service", "prepare"]
