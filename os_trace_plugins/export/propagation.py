"""The W3C propagators every hook uses.

Hooks use this composite directly rather than the global textmap: it is
cheaper (no global lookup) and keeps the wire format fixed at W3C
``traceparent``/``tracestate``/``baggage`` whatever a host installed globally,
which is what oslo.messaging's built-in tracing and oslo.middleware read.
"""

from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["PROPAGATOR", "TRACECONTEXT", "BAGGAGE", "CARRIER_KEYS"]

TRACECONTEXT = TraceContextTextMapPropagator()
BAGGAGE = W3CBaggagePropagator()
PROPAGATOR = CompositePropagator([TRACECONTEXT, BAGGAGE])

#: The keys the propagators read and write.
CARRIER_KEYS = ("traceparent", "tracestate", "baggage")
