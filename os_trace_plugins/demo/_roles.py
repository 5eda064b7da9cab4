"""Service names for the in-process demo, where every service shares one process.

A TracerProvider has one resource, so with the services running as threads
of one process every span would say ``service.name = os-trace-demo``.  This
span processor names the service per span instead (the ``service.name`` span
attribute, which the reports prefer over the resource's): a span that enters
a service (an RPC SERVER/CONSUMER span of the conductor's or worker's
namespace, a notification CONSUMER span, the API's SERVER span) names it, and
every other span inherits its parent's.  Only the demo installs it; with the
services in separate processes it is not used.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind

from os_trace_plugins.demo._services import CONDUCTOR_NS, EVENT_TYPE, WORKER_NS

__all__ = ["ServiceNamer", "API", "CONDUCTOR", "WORKER", "LISTENER", "CLIENT"]

CLIENT = "demo-client"
API = "demo-api"
CONDUCTOR = "demo-conductor"
WORKER = "demo-worker"
LISTENER = "demo-listener"


def _entered(span: Span) -> str | None:
    name = span.name
    if span.kind in (SpanKind.SERVER, SpanKind.CONSUMER):
        if name.startswith(CONDUCTOR_NS + "."):
            return CONDUCTOR
        if name.startswith(WORKER_NS + "."):
            return WORKER
        if name.startswith(EVENT_TYPE):
            return LISTENER
        if span.kind == SpanKind.SERVER:
            return API  # the WSGI middleware's span
    return None


class ServiceNamer(SpanProcessor):
    """Sets the ``service.name`` span attribute from where the span runs."""

    def __init__(self, limit: int = 100_000) -> None:
        self._roles: OrderedDict[int, str] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None,
                 ) -> None:
        role = _entered(span)
        if role is None:
            parent = trace.get_current_span(parent_context).get_span_context()
            with self._lock:
                role = self._roles.get(parent.span_id) if parent.is_valid else None
            role = role or CLIENT
        ctx = span.get_span_context()
        with self._lock:
            self._roles[ctx.span_id] = role
            while len(self._roles) > self._limit:
                self._roles.popitem(last=False)
        span.set_attribute("service.name", role)

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    @staticmethod
    def describe() -> dict[str, Any]:
        return {"services": [CLIENT, API, CONDUCTOR, WORKER, LISTENER]}
