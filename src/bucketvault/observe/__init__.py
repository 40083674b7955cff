"""Observability seams: metrics, traces and logs, each a small protocol with a no-op
implementation; the composition root (service.py) picks the real ones from config."""

from bucketvault.observe.metrics import NO_METRICS, Metrics, NoMetrics
from bucketvault.observe.tracing import NO_TRACER, NoTracer, Span, Tracer

__all__ = ["NO_METRICS", "NO_TRACER", "Metrics", "NoMetrics", "NoTracer", "Span", "Tracer"]
