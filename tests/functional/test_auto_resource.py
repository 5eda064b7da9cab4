"""The per-process resource stamp of our export (auto/_resource.py), in process."""

from __future__ import annotations

import os

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from os_trace_plugins.auto._resource import ProcessIdentity, StampingExporter
from tests.base import TestCase


class TestStamp(TestCase):
    def stamped_provider(self, resource: Resource, identity: ProcessIdentity,
                 ) -> tuple[TracerProvider, InMemorySpanExporter]:
        sink = InMemorySpanExporter()
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(StampingExporter(sink, identity)))
        self.addCleanup(provider.shutdown)
        return provider, sink

    def test_matching_resource_passes_spans_through(self) -> None:
        identity = ProcessIdentity("svc", "h")
        resource = Resource({"service.name": "svc", "process.pid": os.getpid(),
                             "service.instance.id": identity.instance, "host.name": "h"})
        provider, sink = self.stamped_provider(resource, identity)
        provider.get_tracer("t").start_span("a").end()
        (span,) = sink.get_finished_spans()
        self.assertIs(span.resource, resource)

    def test_unknown_service_gets_ours_and_a_renewal_restamps(self) -> None:
        identity = ProcessIdentity("placement-api", "h")
        provider, sink = self.stamped_provider(Resource.create({}), identity)
        tracer = provider.get_tracer("t")
        tracer.start_span("before").end()
        first = identity.instance
        identity.renew()  # what the at-fork handler does in a child
        tracer.start_span("after").end()
        before, after = sink.get_finished_spans()
        self.assertEqual(before.resource.attributes["service.name"], "placement-api")
        self.assertEqual(before.resource.attributes["service.instance.id"], first)
        self.assertNotEqual(after.resource.attributes["service.instance.id"], first)
        self.assertEqual(after.name, "after")

    def test_configured_otel_service_name_is_kept_unless_forced(self) -> None:
        kept, sink = self.stamped_provider(Resource({"service.name": "from-otel"}),
                                   ProcessIdentity("prog", "h"))
        kept.get_tracer("t").start_span("a").end()
        self.assertEqual(sink.get_finished_spans()[0].resource.attributes["service.name"],
                         "from-otel")
        forced, sink2 = self.stamped_provider(Resource({"service.name": "from-otel"}),
                                      ProcessIdentity("conf", "h", force_service=True))
        forced.get_tracer("t").start_span("a").end()
        self.assertEqual(sink2.get_finished_spans()[0].resource.attributes["service.name"],
                         "conf")
