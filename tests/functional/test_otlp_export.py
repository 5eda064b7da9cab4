"""setup() exports over OTLP/HTTP to a real receiver on loopback."""

from __future__ import annotations

from opentelemetry import trace

import os_trace_plugins
from tests.base import TestCase, make_conf, reset_globals
from tests.otlp_receiver import OTLPReceiver


class TestOTLPExport(TestCase):
    def test_spans_resource_and_attributes_reach_the_receiver(self) -> None:
        reset_globals()  # setup() builds its own provider
        with OTLPReceiver() as receiver:
            conf = make_conf(enabled=True,
                             connection_string=f"otlp://{receiver.endpoint}",
                             otlp_headers={"authorization": "Bearer t0k"})
            self.assertTrue(os_trace_plugins.setup(conf, service="nova-api", host="ctl-1"))
            tracer = trace.get_tracer("test.export")
            with tracer.start_as_current_span("GET /servers",
                                              kind=trace.SpanKind.SERVER) as root:
                root.set_attribute("openstack.request_id", "req-1")
                with tracer.start_as_current_span("child"):
                    pass
            os_trace_plugins.shutdown()  # flushes the batch processor
            spans = receiver.wait_for(2)
        self.assertEqual(sorted(s.name for s in spans), ["GET /servers", "child"])
        by_name = {s.name: s for s in spans}
        root_s, child = by_name["GET /servers"], by_name["child"]
        self.assertEqual(child.parent_span_id, root_s.span_id)
        self.assertEqual(child.trace_id, root_s.trace_id)
        self.assertEqual(root_s.kind, 2)  # SPAN_KIND_SERVER
        self.assertEqual(root_s.attributes["openstack.request_id"], "req-1")
        self.assertEqual(root_s.resource["service.name"], "nova-api")
        self.assertEqual(root_s.resource["host.name"], "ctl-1")
        self.assertIn("service.instance.id", root_s.resource)
        self.assertTrue(all("protobuf" in ct for ct in receiver.content_types))

    def test_jaeger_scheme_speaks_otlp(self) -> None:
        reset_globals()
        with OTLPReceiver() as receiver:
            conf = make_conf(enabled=True,
                             connection_string=f"jaeger://127.0.0.1:{receiver.port}")
            self.assertTrue(os_trace_plugins.setup(conf, service="glance-api"))
            with trace.get_tracer("t").start_as_current_span("op"):
                pass
            os_trace_plugins.shutdown()
            spans = receiver.wait_for(1)
        self.assertEqual([s.name for s in spans], ["op"])
        self.assertEqual(spans[0].resource["service.name"], "glance-api")
