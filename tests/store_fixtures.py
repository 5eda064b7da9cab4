"""Spans for the store and report tests: a realistic OpenStack-shaped trace.

``record(...)`` runs real SDK spans (so the exporter sees genuine
ReadableSpans) and returns them; ``fill_store`` writes them through
:class:`SQLiteSpanExporter` in batches, as the batch processor would.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from os_trace_plugins.store._exporter import SQLiteSpanExporter

__all__ = ["Recorder", "openstack_trace", "wide_trace", "fill_store"]


class Recorder:
    """One tracer per service, all finishing into one in-memory list."""

    def __init__(self) -> None:
        self.memory = InMemorySpanExporter()
        self._providers: dict[str, TracerProvider] = {}

    def tracer(self, service: str) -> trace.Tracer:
        if service not in self._providers:
            p = TracerProvider(resource=Resource.create({"service.name": service}))
            p.add_span_processor(SimpleSpanProcessor(self.memory))
            self._providers[service] = p
        return self._providers[service].get_tracer("tests")

    def take(self) -> list[ReadableSpan]:
        spans = list(self.memory.get_finished_spans())
        self.memory.clear()
        return spans


def openstack_trace(rec: Recorder, error: bool = True, sleep: float = 0.0) -> str:
    """api SERVER > rpc CLIENT > conductor SERVER > db, driver, cast > worker; trace id."""
    api, cond, worker = (rec.tracer(s) for s in ("nova-api", "nova-conductor",
                                                   "nova-compute"))
    with api.start_as_current_span(
            "POST /v2.1/servers", kind=SpanKind.SERVER,
            attributes={"http.request.method": "POST", "url.path": "/v2.1/servers",
                        "openstack.request_id": "req-1"}) as root:
        with api.start_as_current_span(
                "conductor.build_instances", kind=SpanKind.CLIENT,
                attributes={"rpc.method": "build_instances", "messaging.system": "rabbitmq"}):
            with cond.start_as_current_span(
                    "build_instances", kind=SpanKind.SERVER,
                    attributes={"rpc.method": "build_instances",
                                "messaging.system": "rabbitmq"}):
                for q in ("SELECT instances", "UPDATE instances"):
                    with cond.start_as_current_span(
                            q, kind=SpanKind.CLIENT,
                            attributes={"db.system.name": "sqlite",
                                        "db.query.text": q + " WHERE id = ?"}):
                        time.sleep(sleep)
                with cond.start_as_current_span(
                        "FakeDriver.spawn",
                        attributes={"openstack.driver.name": "FakeDriver",
                                    "code.function.name": "spawn"}) as drv:
                    drv.add_event("retry", {"attempt": 1})
                    if error:
                        drv.record_exception(RuntimeError("hypervisor unreachable"))
                        drv.set_status(Status(StatusCode.ERROR, "hypervisor unreachable"))
                with cond.start_as_current_span(
                        "compute.post_build send", kind=SpanKind.PRODUCER,
                        attributes={"messaging.system": "rabbitmq"}):
                    with worker.start_as_current_span(
                            "compute.post_build process", kind=SpanKind.CONSUMER,
                            attributes={"messaging.system": "rabbitmq"}):
                        time.sleep(sleep)
        return f"{root.get_span_context().trace_id:032x}"


def wide_trace(rec: Recorder, n: int) -> str:
    """One root, ``n - 1`` spans under a few levels (a big, realistic report)."""
    api, db = rec.tracer("api"), rec.tracer("db")
    made = 1
    with api.start_as_current_span("big request", kind=SpanKind.SERVER) as root:
        while made < n:
            with api.start_as_current_span(f"step {made}", kind=SpanKind.CLIENT,
                                           attributes={"rpc.method": f"m{made}"}):
                made += 1
                for _ in range(min(8, n - made)):
                    with db.start_as_current_span(
                            "SELECT", kind=SpanKind.CLIENT,
                            attributes={"db.system.name": "sqlite",
                                        "db.query.text": f"SELECT {made}"}):
                        made += 1
        return f"{root.get_span_context().trace_id:032x}"


def fill_store(path: str, spans: Sequence[ReadableSpan], batch: int = 512,
               exporter: SQLiteSpanExporter | None = None) -> SQLiteSpanExporter:
    exp = exporter or SQLiteSpanExporter(path)
    for i in range(0, len(spans), batch):
        assert exp.export(spans[i:i + batch]).name == "SUCCESS"
    return exp
