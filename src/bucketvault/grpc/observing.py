"""What the transport reports about each call, and the gate that drains it at shutdown.

``CallObserver`` is the interceptor's hook around one RPC: a server span, the RPC
metrics, the one INFO line per RPC, and the service's refresh observer made current for
the call (so the caches a call creates report to this service's metrics).

``DrainGate`` is an outer interceptor counting calls in flight; once closed it refuses
new calls (UNAVAILABLE SHUTTING_DOWN) while those in flight finish. Health and
reflection pass untouched, so a load balancer can still read NOT_SERVING.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

import grpc

from bucketvault.audit.draft import AuditDraft
from bucketvault.errors import BucketVaultError, Unavailable
from bucketvault.grpc.status import to_grpc_status
from bucketvault.observe.metrics import Metrics
from bucketvault.observe.tracing import NoTracer, Tracer
from bucketvault.providers.refresh import RefreshObserver, observing

log = logging.getLogger("bucketvault.rpc")

PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def cache_name(what: str) -> str:
    """A cache's label: "AWS session" -> "aws_session"."""
    return re.sub(r"[^a-z0-9]+", "_", what.lower()).strip("_") or "value"


class RefreshTelemetry:
    """RefreshObserver reporting to metrics, with a client span around each fetch."""

    def __init__(self, metrics: Metrics, tracer: Tracer) -> None:
        self._metrics = metrics
        self._tracer = tracer

    def served(self, what: str, hit: bool) -> None:
        """Count a hit or a miss."""
        self._metrics.cache(cache_name(what), "hit" if hit else "miss")

    @contextmanager
    def _fetching(self, what: str, background: bool) -> Iterator[None]:
        cache = cache_name(what)
        mode = "background" if background else "blocking"
        start = time.perf_counter()
        outcome = "error"
        with self._tracer.span(
            f"refresh {cache}", attributes={"bucketvault.cache": cache, "bucketvault.mode": mode}
        ) as span:
            try:
                yield
                outcome = "ok"
            except BucketVaultError as exc:
                span.fail(exc.reason)
                raise
            finally:
                self._metrics.refresh(cache, mode, outcome, time.perf_counter() - start)

    def fetching(self, what: str, background: bool) -> AbstractContextManager[None]:
        """Time, count and trace one fetch."""
        return self._fetching(what, background)

    def holding(self, holder: object, what: str, expires_at: datetime | None) -> None:
        """Track the soonest expiry per cache."""
        at = expires_at.timestamp() if expires_at is not None else None
        self._metrics.expiry(holder, cache_name(what), at)


def _status(context: grpc.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    code: grpc.StatusCode | None = context.code()
    if code is not None:
        return code
    if error is None:
        return grpc.StatusCode.OK
    # The caller went away mid-stream (the generator was closed).
    if isinstance(error, GeneratorExit):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


class CallObserver:
    """The interceptor's hook around each RPC (see the module docstring)."""

    def __init__(self, metrics: Metrics, tracer: Tracer) -> None:
        self._metrics = metrics
        self._tracer = tracer
        self._tracing = not isinstance(tracer, NoTracer)
        self.refresh: RefreshObserver = RefreshTelemetry(metrics, tracer)

    @contextmanager
    def observe(
        self, method: str, draft: AuditDraft, context: grpc.ServicerContext
    ) -> Iterator[None]:
        """Around the whole of one call (a stream: its whole iteration)."""
        start = time.perf_counter()
        carrier = (
            {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            if self._tracing
            else None
        )
        error: BaseException | None = None
        with (
            self._tracer.span(
                method.lstrip("/"),
                server=True,
                attributes={
                    "rpc.system": "grpc",
                    "rpc.method": method,
                    "bucketvault.request_id": draft.request_id,
                },
                carrier=carrier,
            ) as span,
            observing(self.refresh),
        ):
            try:
                yield
            except BaseException as exc:
                error = exc
                raise
            finally:
                seconds = time.perf_counter() - start
                code = _status(context, error)
                span.set("rpc.grpc.status_code", code.value[0])
                if code is not grpc.StatusCode.OK:
                    span.fail(code.name)
                self._metrics.rpc(method, code.name, seconds)
                # The level is checked first: with INFO off, no fields are gathered for a
                # line nobody writes.
                if log.isEnabledFor(logging.INFO):
                    self._log(method, code, seconds, draft)

    @staticmethod
    def _log(method: str, code: grpc.StatusCode, seconds: float, draft: AuditDraft) -> None:
        log.info(
            "rpc %s %s %.1fms",
            method,
            code.name,
            seconds * 1000,
            extra={
                "request_id": draft.request_id,
                "principal": draft.principal,
                "method": method,
                "status": code.name,
                "duration_ms": round(seconds * 1000, 3),
                "tenant": draft.tenant,
                "mount": draft.mount_id,
            },
        )


class DrainGate(grpc.ServerInterceptor):  # type: ignore[misc]
    """Counts calls in flight; once closed, refuses new ones (see the module docstring)."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._in_flight = 0
        self._closed = False
        self.refused = 0

    @property
    def in_flight(self) -> int:
        """Calls being served now."""
        return self._in_flight

    @property
    def closed(self) -> bool:
        """True once close() was called (the server is draining)."""
        return self._closed

    def close(self) -> int:
        """Refuse new calls from now on; returns how many are in flight."""
        with self._cv:
            self._closed = True
            return self._in_flight

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no call is in flight (True) or timeout passes (False)."""
        with self._cv:
            return self._cv.wait_for(lambda: self._in_flight == 0, timeout)

    def _admit(self, context: grpc.ServicerContext) -> None:
        with self._cv:
            if not self._closed:
                self._in_flight += 1
                return
            self.refused += 1
        context.abort_with_status(
            to_grpc_status(
                Unavailable(
                    "the server is shutting down: retry (another instance will answer)",
                    reason="SHUTTING_DOWN",
                )
            )
        )

    def _leave(self) -> None:
        with self._cv:
            self._in_flight -= 1
            self._cv.notify_all()

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(PUBLIC_PREFIXES):
            return handler
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _unary(self, behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            self._admit(context)
            try:
                return behavior(request, context)
            finally:
                self._leave()

        return handle

    def _stream(
        self, behavior: Callable[[Any, Any], Iterator[Any]]
    ) -> Callable[[Any, Any], Iterator[Any]]:
        def handle(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            self._admit(context)
            try:
                yield from behavior(request, context)
            finally:
                self._leave()

        return handle


__all__ = ["CallObserver", "DrainGate", "RefreshTelemetry", "cache_name"]
