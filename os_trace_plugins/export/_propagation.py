"""The W3C propagators every hook uses, and the one ``traceparent`` formatter.

Hooks use this composite directly rather than the global textmap: it keeps
the wire format fixed at W3C ``traceparent``/``tracestate``/``baggage``
whatever a host installed globally, which is what oslo.messaging's built-in
tracing and oslo.middleware read.
"""

from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["PROPAGATOR", "TRACECONTEXT", "BAGGAGE", "format_traceparent"]

TRACECONTEXT = TraceContextTextMapPropagator()
BAGGAGE = W3CBaggagePropagator()
PROPAGATOR = CompositePropagator([TRACECONTEXT, BAGGAGE])


def format_traceparent(sc: SpanContext) -> str:
    """The W3C ``traceparent`` value of a span context (version 00)."""
    # bytes.hex(): measurably cheaper than "%032x" of a 128-bit int
    return ("00-" + sc.trace_id.to_bytes(16, "big").hex() + "-"
            + sc.span_id.to_bytes(8, "big").hex() + "-"
            + (sc.trace_flags & 0xFF).to_bytes(1, "big").hex())
