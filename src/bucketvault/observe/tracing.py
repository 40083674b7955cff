"""The Tracer seam: spans around RPCs and outbound cloud calls.

OpenTelemetry is imported only by ``OtelTracer`` (built when OTEL_EXPORTER_OTLP_ENDPOINT
is set, or when a test injects an exporter): a server without it never loads the SDK.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

Attribute = str | int | float | bool

OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


class Span(Protocol):
    # The bodies do nothing, so that the tracing-off classes below are these protocols
    # themselves rather than second copies of every signature.
    def set(self, key: str, value: Attribute) -> None:
        """Set one attribute."""
        return None

    def fail(self, description: str) -> None:
        """Mark the span as failed (a status code name, an error reason: nothing secret)."""
        return None


class _NoSpan(Span):
    """Tracing off: sets and fails nothing."""


_NO_SPAN = _NoSpan()


class _NoSpanContext:
    def __enter__(self) -> Span:
        return _NO_SPAN

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SPAN_CONTEXT = _NoSpanContext()


class Tracer(Protocol):
    def span(
        self,
        name: str,
        *,
        server: bool = False,
        attributes: Mapping[str, Attribute] | None = None,
        carrier: Mapping[str, str] | None = None,
    ) -> AbstractContextManager[Span]:
        """A span current for the body; server spans continue a caller's traceparent
        found in carrier (request metadata)."""
        return _NO_SPAN_CONTEXT

    def close(self) -> None:
        """Export what is buffered and stop."""
        return None


class NoTracer(Tracer):
    """Tracing off: one shared, reusable context manager per span, nothing to flush."""


NO_TRACER = NoTracer()


class _OtelSpan:
    def __init__(self, span: Any) -> None:
        self._span = span

    def set(self, key: str, value: Attribute) -> None:
        self._span.set_attribute(key, value)

    def fail(self, description: str) -> None:
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

        self._span.set_status(Status(StatusCode.ERROR, description))


class OtelTracer:
    """Spans through an OpenTelemetry TracerProvider of this service's own (not the
    process-global one, so that two services in one process do not share exporters)."""

    def __init__(self, exporter: Any = None, *, endpoint: str = "", batch: bool = True) -> None:
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
            BatchSpanProcessor,
            SimpleSpanProcessor,
        )
        from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
            TraceContextTextMapPropagator,
        )

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )

            exporter = OTLPSpanExporter(endpoint=endpoint or None)
        self._provider = TracerProvider(resource=Resource.create({"service.name": "bucketvault"}))
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        self._provider.add_span_processor(processor)
        self._tracer = self._provider.get_tracer("bucketvault")
        self._propagator = TraceContextTextMapPropagator()

    @contextmanager
    def span(
        self,
        name: str,
        *,
        server: bool = False,
        attributes: Mapping[str, Attribute] | None = None,
        carrier: Mapping[str, str] | None = None,
    ) -> Iterator[Span]:
        """A span current for the body."""
        from opentelemetry.trace import SpanKind  # noqa: PLC0415

        parent = self._propagator.extract(carrier=dict(carrier)) if carrier else None
        kind = SpanKind.SERVER if server else SpanKind.CLIENT
        # Exceptions are not recorded: their text may quote input, and input may be secret.
        with self._tracer.start_as_current_span(
            name,
            context=parent,
            kind=kind,
            attributes=dict(attributes or {}),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield _OtelSpan(span)

    def close(self) -> None:
        """Flush and shut the provider down."""
        self._provider.shutdown()


def build_tracer(env: Mapping[str, str]) -> Tracer:
    """OtelTracer exporting over OTLP/gRPC when OTEL_EXPORTER_OTLP_ENDPOINT is set."""
    endpoint = env.get(OTLP_ENDPOINT, "").strip()
    if not endpoint:
        return NO_TRACER
    return OtelTracer(endpoint=endpoint)


__all__ = ["NO_TRACER", "OTLP_ENDPOINT", "NoTracer", "OtelTracer", "Span", "Tracer", "build_tracer"]
