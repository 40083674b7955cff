"""Metrics, logs and traces of a real server: /metrics scraped over HTTP after real RPCs,
the per-RPC JSON log line, the request id end to end, and spans through an injected
in-memory exporter (and once through OTLP/gRPC to a local collector stand-in)."""

from __future__ import annotations

import io
import json
import logging
import secrets
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from core.secrets_fixtures import sample
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from bucketvault import errors
from bucketvault.clock import FrozenClock
from bucketvault.config import Config
from bucketvault.grpc.observing import RefreshTelemetry
from bucketvault.models import Credential, Mount, SignOptions
from bucketvault.observe.logs import (
    QUIET_LOGGERS,
    JsonFormatter,
    TextFormatter,
    configure_logging,
)
from bucketvault.observe.prometheus import MetricsServer, PrometheusMetrics
from bucketvault.observe.tracing import OtelTracer
from bucketvault.providers.base import CloudProvider, CredentialHandle, SignedBatch
from bucketvault.providers.kinds import ParsedSecret
from bucketvault.providers.refresh import Expiring, RefreshingValue, RefreshWindows, observing
from bucketvault.testing.fakes import LocalHandle, LocalProvider, local_providers
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.v1 import signer_pb2, signer_pb2_grpc

METRICS_ON = {"BUCKETVAULT_METRICS_LISTEN": "127.0.0.1:0"}
TENANT = "acme"
SIGNER = "/bucketvault.v1.SignerService/SignURL"


@dataclass
class World:
    server: RunningServer
    canary: str
    mount_name: str
    key: str
    mount_id: str


@contextmanager
def world(tmp_path: Path, **kwargs: Any) -> Iterator[World]:
    """A server with metrics on, local providers, one credential with a canary secret,
    one mount, and a few real RPCs: successes, a batch, a listing and a failure."""
    canary = "CANARY" + secrets.token_hex(8)
    mount_name = "mountname" + secrets.token_hex(4)
    key = "keyname" + secrets.token_hex(4) + ".jpg"
    with start_server(tmp_path, env=METRICS_ON, providers=local_providers((key,)), **kwargs) as srv:
        c = srv.client()
        cred = c.register_credential(TENANT, "GCS_HMAC", sample("GCS_HMAC", canary))
        mount = c.create_mount(
            TENANT, name=mount_name, bucket="bkt-" + mount_name, credential_id=cred.credential_id
        )
        c.sign_url(TENANT, mount.mount_id, key)
        c.sign_urls(TENANT, mount.mount_id, [key, "other-" + key])
        list(c.list_prefix(TENANT, mount.mount_id, sign_ttl_seconds=60))
        with pytest.raises(errors.NotFound):
            c.get_mount(TENANT, "mnt_" + "0" * 20)
        yield World(srv, canary, mount_name, key, mount.mount_id)


def scrape(srv: RunningServer) -> str:
    assert srv.service is not None and srv.service.metrics_server is not None
    with urllib.request.urlopen(srv.service.metrics_server.url, timeout=5) as response:
        assert response.status == 200
        return str(response.read().decode())


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def test_metrics_move_with_real_rpcs_and_carry_no_tenant_strings(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        text = scrape(w.server)
        assert value(text, "bucketvault_rpcs_total", method=SIGNER, code="OK") == 1
        assert (
            value(
                text,
                "bucketvault_rpcs_total",
                method="/bucketvault.v1.VaultService/GetMount",
                code="NOT_FOUND",
            )
            == 1
        )
        assert value(text, "bucketvault_rpc_duration_seconds_count", method=SIGNER) == 1
        listing = "/bucketvault.v1.SignerService/ListPrefix"
        assert value(text, "bucketvault_rpcs_total", method=listing, code="OK") == 1
        # SignURL 1 + SignURLs 2 + one listed key, every family "gcs" here; SignURLs repeats
        # SignURL's key within its stable window, which the URL cache answers unsigned
        # (listings sign each page afresh: they do not consult the cache).
        assert value(text, "bucketvault_urls_signed_total", family="gcs") == 3
        assert value(text, "bucketvault_url_cache_lookups_total", result="hit") == 1
        assert value(text, "bucketvault_url_cache_lookups_total", result="miss") == 2
        assert (
            value(
                text,
                "bucketvault_kek_operations_total",
                operation="wrap",
                backend="file",
                outcome="ok",
            )
            >= 1
        )
        assert (
            value(
                text,
                "bucketvault_kek_operations_total",
                operation="unwrap",
                backend="file",
                outcome="ok",
            )
            >= 1
        )
        assert value(text, "bucketvault_audit_commit_duration_seconds_count") >= 1
        assert value(text, "bucketvault_audit_records_total", outcome="committed") >= 6
        assert "bucketvault_audit_queue_depth" in text
        assert "bucketvault_rpcs_in_flight" in text
        # Nothing a tenant chose, nothing secret.
        for forbidden in (w.canary, w.mount_name, w.key, w.mount_id, TENANT, "bkt-"):
            assert forbidden not in text, forbidden
        assert w.server.admin_token not in text


def test_two_servers_in_one_process_keep_their_own_registries(tmp_path: Path) -> None:
    with world(tmp_path / "a") as a, start_server(tmp_path / "b", env=METRICS_ON) as b:
        list(b.client().list_credentials(TENANT))
        text_a, text_b = scrape(a.server), scrape(b)
        assert value(text_a, "bucketvault_rpcs_total", method=SIGNER, code="OK") == 1
        assert value(text_b, "bucketvault_rpcs_total", method=SIGNER, code="OK") == 0
        listed = "/bucketvault.v1.VaultService/ListCredentials"
        assert value(text_b, "bucketvault_rpcs_total", method=listed, code="OK") == 1
        assert value(text_a, "bucketvault_rpcs_total", method=listed, code="OK") == 0


def test_metrics_listener_serves_only_its_path_and_stops_with_the_service(
    tmp_path: Path,
) -> None:
    with start_server(tmp_path, env=METRICS_ON) as srv:
        assert srv.service is not None and srv.service.metrics_server is not None
        url = srv.service.metrics_server.url
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=5)
        assert info.value.code == 404
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)


def test_metrics_are_off_by_default(tmp_path: Path) -> None:
    with start_server(tmp_path) as srv:
        assert srv.service is not None and srv.service.metrics_server is None


def test_refresh_cache_reports_hits_misses_refreshes_and_expiry() -> None:
    clock = FrozenClock()
    metrics = PrometheusMetrics()
    exporter = InMemorySpanExporter()
    tracer = OtelTracer(exporter, batch=False)
    lifetime = timedelta(hours=1)

    def fetch() -> Expiring[str]:
        return Expiring("session", clock.now() + lifetime)

    windows = RefreshWindows(advisory=timedelta(minutes=20), mandatory=timedelta(minutes=5))
    with observing(RefreshTelemetry(metrics, tracer)):
        cache = RefreshingValue(
            fetch, clock, windows, spawn=lambda work: work(), what="AWS session"
        )
    cache.get()  # miss: nothing cached, the caller waits
    cache.get()  # hit
    clock.advance(timedelta(minutes=45))
    cache.get()  # hit, and a background refresh
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    assert value(text, "bucketvault_cache_requests_total", cache="aws_session", result="miss") == 1
    assert value(text, "bucketvault_cache_requests_total", cache="aws_session", result="hit") == 2
    for mode in ("blocking", "background"):
        assert (
            value(
                text,
                "bucketvault_cache_refreshes_total",
                cache="aws_session",
                mode=mode,
                outcome="ok",
            )
            == 1
        )
    soonest = value(text, "bucketvault_cache_soonest_expiry_timestamp_seconds", cache="aws_session")
    assert soonest == (clock.now() + lifetime).timestamp()
    assert [s.name for s in exporter.get_finished_spans()] == ["refresh aws_session"] * 2
    cache.close()
    text = generate_latest(metrics.registry).decode()
    assert "bucketvault_cache_soonest_expiry_timestamp_seconds{" not in text
    tracer.close()


def test_one_json_line_per_rpc_with_its_fields(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bucketvault.rpc")
    with world(tmp_path) as w:
        pass
    lines = [r for r in caplog.records if r.name == "bucketvault.rpc" and hasattr(r, "duration_ms")]
    by_method = {getattr(r, "method"): r for r in lines}  # noqa: B009
    sign = by_method[SIGNER]
    parsed = json.loads(JsonFormatter().format(sign))
    assert parsed["level"] == "INFO"
    assert parsed["logger"] == "bucketvault.rpc"
    assert parsed["status"] == "OK"
    assert parsed["principal"] == "admin"
    assert parsed["tenant"] == TENANT
    assert parsed["mount"] == w.mount_id
    assert parsed["duration_ms"] >= 0
    assert len(parsed["request_id"]) >= 8
    failed = json.loads(JsonFormatter().format(by_method["/bucketvault.v1.VaultService/GetMount"]))
    assert failed["status"] == "NOT_FOUND"
    # One per RPC: register, create, sign, sign batch, list, the failed get (and the
    # registration key the SDK fetched before sealing).
    assert len(lines) == 7
    text = TextFormatter().format(sign)
    assert f"request_id={parsed['request_id']}" in text and "status=OK" in text


def test_debug_logs_carry_no_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with world(tmp_path) as w:
        token = w.server.admin_token
    assert caplog.records
    for record in caplog.records:
        formatted = JsonFormatter().format(record)
        assert w.canary not in formatted
        assert token not in formatted


def test_request_id_is_kept_returned_logged_and_audited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bucketvault.rpc")
    request_id = "req-" + secrets.token_hex(6)
    with world(tmp_path) as w:
        channel = grpc.insecure_channel(w.server.address)
        stub = signer_pb2_grpc.SignerServiceStub(channel)
        _, call = stub.SignURL.with_call(
            signer_pb2.SignURLRequest(
                tenant=TENANT, mount_id=w.mount_id, key=w.key, method=1, ttl_seconds=60
            ),
            metadata=(
                ("authorization", f"Bearer {w.server.admin_token}"),
                ("x-request-id", request_id),
            ),
            timeout=10,
        )
        channel.close()
        assert ("x-request-id", request_id) in tuple(call.initial_metadata())
        records = [r for r in w.server.client().query_audit(TENANT) if r.request_id == request_id]
        assert [r.action for r in records] == ["signer.sign"]
    logged = [r for r in caplog.records if getattr(r, "request_id", "") == request_id]
    assert [getattr(r, "status") for r in logged] == ["OK"]  # noqa: B009


def test_spans_through_an_injected_exporter(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    tracer = OtelTracer(exporter, batch=False)
    trace_id = secrets.token_hex(16)
    with world(tmp_path, tracer=tracer) as w:
        channel = grpc.insecure_channel(w.server.address)
        signer_pb2_grpc.SignerServiceStub(channel).SignURL(
            signer_pb2.SignURLRequest(tenant=TENANT, mount_id=w.mount_id, key=w.key, method=1),
            metadata=(
                ("authorization", f"Bearer {w.server.admin_token}"),
                ("traceparent", f"00-{trace_id}-{'ab' * 8}-01"),
            ),
            timeout=10,
        )
        channel.close()
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.name == SIGNER.lstrip("/")]
    assert len(server) == 2
    assert all(
        s.attributes is not None and s.attributes["rpc.grpc.status_code"] == 0 for s in server
    )
    continued = [s for s in server if format(s.context.trace_id, "032x") == trace_id]
    assert len(continued) == 1
    failed = next(s for s in spans if s.name == "bucketvault.v1.VaultService/GetMount")
    assert failed.attributes is not None and failed.attributes["rpc.grpc.status_code"] == 5
    assert not failed.status.is_ok
    # The KEK calls of an RPC (the first use of a credential) are spans inside it; those
    # of start-up (the service keys) are traces of their own.
    ids = {s.context.span_id for s in spans if s.kind.name == "SERVER"}
    unwrap = [s for s in spans if s.name == "kek.unwrap" and s.parent is not None]
    assert unwrap and all(s.parent is not None and s.parent.span_id in ids for s in unwrap)
    for s in spans:
        assert w.canary not in str(s.attributes) and w.mount_name not in str(s.attributes)


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.names: list[str] = []
        self.got = threading.Event()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.names += [s.name for s in scope.spans]
        self.got.set()
        return trace_service_pb2.ExportTraceServiceResponse()


def test_otlp_exporter_sends_to_a_collector(tmp_path: Path) -> None:
    collector = _Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}
        with start_server(tmp_path, env=env) as srv:
            list(srv.client().list_credentials(TENANT))
        # Service.stop shut the tracer down, which flushes the batch.
        assert collector.got.wait(10)
        assert "bucketvault.v1.VaultService/ListCredentials" in collector.names
    finally:
        server.stop(None)


NO_OTEL_PROGRAM = textwrap.dedent(
    """
    import sys, tempfile
    from pathlib import Path
    from bucketvault.testing.server import start_server
    with tempfile.TemporaryDirectory() as tmp:
        with start_server(Path(tmp), env={"BUCKETVAULT_METRICS_LISTEN": "127.0.0.1:0"}) as srv:
            list(srv.client().list_credentials("acme"))
    print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
    """
)


def test_no_opentelemetry_is_loaded_without_an_endpoint() -> None:
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", NO_OTEL_PROGRAM],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_json_formatter_keeps_exception_text_out() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bucketvault.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        raise ValueError("secret-in-message")
    except ValueError:
        logger.exception("boom", extra={"request_id": "r1"})
    finally:
        logger.removeHandler(handler)
    entry = json.loads(stream.getvalue())
    assert entry["exception"] == "ValueError" and entry["request_id"] == "r1"
    assert "secret-in-message" not in stream.getvalue()


@pytest.mark.parametrize("raw", ["9464", "localhost:", ":9464", "host:port", "h:99999"])
def test_a_bad_metrics_listen_address_stops_start_up(raw: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        Config.from_env({"BUCKETVAULT_METRICS_LISTEN": raw})


def test_observability_settings_parse() -> None:
    config = Config.from_env(
        {"BUCKETVAULT_METRICS_LISTEN": "[::1]:9464", "BUCKETVAULT_DRAIN_SECONDS": "5"}
    )
    assert (config.metrics_listen, config.drain_seconds) == ("[::1]:9464", 5)
    default = Config.from_env({})
    assert (default.metrics_listen, default.drain_seconds) == ("", 20)
    with pytest.raises(errors.InvalidArgument):
        Config.from_env({"BUCKETVAULT_DRAIN_SECONDS": "-1"})


def test_metrics_listen_on_ipv6_loopback() -> None:
    metrics = PrometheusMetrics()
    metrics.urls_signed("aws", 2)
    try:
        server = MetricsServer(metrics.registry, "[::1]:0")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        with urllib.request.urlopen(f"http://[::1]:{server.port}/metrics", timeout=5) as r:
            assert 'bucketvault_urls_signed_total{family="aws"} 2.0' in r.read().decode()
    finally:
        server.stop()


def test_configure_logging_formats_and_quiets_http_clients() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    try:
        stream = io.StringIO()
        configure_logging({}, stream)
        logging.getLogger("bucketvault.test").info("hello", extra={"request_id": "r2"})
        logging.getLogger("botocore.endpoint").info("a header")
        assert logging.getLogger("urllib3").level == logging.WARNING
        lines = stream.getvalue().splitlines()
        assert len(lines) == 1 and json.loads(lines[0])["request_id"] == "r2"
        stream = io.StringIO()
        configure_logging({"BUCKETVAULT_LOG_FORMAT": "text"}, stream)
        logging.getLogger("bucketvault.test").info("hello", extra={"request_id": "r3"})
        assert stream.getvalue().rstrip().endswith("hello request_id=r3")
        with pytest.raises(errors.InvalidArgument):
            configure_logging({"BUCKETVAULT_LOG_FORMAT": "xml"})
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


@dataclass(frozen=True)
class _SasSigner:
    valid_until: datetime
    limit_reason: str = "SAS_EXPIRY"

    def sign(self, keys: Sequence[str], options: SignOptions) -> SignedBatch:
        return SignedBatch([f"https://signed.invalid/{k}?sas" for k in keys])


class _SasProvider(LocalProvider):
    """A family whose credentials expire by themselves, like a customer SAS."""

    def __init__(self, base: LocalProvider, until: datetime) -> None:
        super().__init__(base.name, base.kinds, base.max_url_seconds, ("a.jpg",))
        self.until = until

    def open(self, credential: Credential, secret: ParsedSecret) -> CredentialHandle:
        until = self.until

        @dataclass(frozen=True)
        class Handle(LocalHandle):
            def signer(self, mount: Mount, options: SignOptions) -> _SasSigner:  # type: ignore[override]
                return _SasSigner(until)

        return Handle(credential.credential_id, ("a.jpg",))


def test_soonest_expiry_of_self_expiring_credentials_in_use(tmp_path: Path) -> None:
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=30)
    providers: list[CloudProvider] = [
        _SasProvider(p, until) if p.name == "gcs" and isinstance(p, LocalProvider) else p
        for p in local_providers()
    ]
    with start_server(tmp_path, env=METRICS_ON, providers=providers) as srv:
        c = srv.client()
        cred = c.register_credential(TENANT, "GCS_HMAC", sample("GCS_HMAC"))
        mount = c.create_mount(TENANT, name="m", bucket="b", credential_id=cred.credential_id)
        url = c.sign_url(TENANT, mount.mount_id, "a.jpg")
        assert url.url.endswith("?sas")
        text = scrape(srv)
        name = "bucketvault_credential_soonest_expiry_timestamp_seconds"
        assert value(text, name, family="gcs") == until.timestamp()
        c.revoke_credential(TENANT, cred.credential_id)
        assert f'{name}{{family="gcs"}}' not in scrape(srv)
