"""Outage accounting and bounded flushes (export/_outage.py, export/_bounded.py).

The real OTLP/HTTP exporter against the receiver of tests/otlp_receiver.py,
switched to a fault; the figures under load are in tests/reliability.
"""

from __future__ import annotations

import logging
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider

from os_trace_plugins.export._bounded import BoundedProcessor
from os_trace_plugins.export._outage import AccountingExporter, OutageLog
from tests.base import TestCase
from tests.otlp_receiver import OTLPReceiver


class TestOutage(TestCase):
    def pipeline(self, receiver: OTLPReceiver, queue: int = 64,
                 shutdown_timeout: float = 1.0) -> tuple[TracerProvider, BoundedProcessor]:
        raw = OTLPSpanExporter(endpoint=f"http://{receiver.endpoint}/v1/traces", timeout=0.5)
        accounting = AccountingExporter(raw, OutageLog("otlp://test"))
        processor = BoundedProcessor(accounting, queue, 0.5, shutdown_timeout)
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(processor)
        self.addCleanup(processor.shutdown)
        return provider, processor

    def test_one_warning_per_outage_one_info_when_back_with_the_count(self) -> None:
        with OTLPReceiver() as receiver:
            provider, processor = self.pipeline(receiver)
            tracer = provider.get_tracer("t")
            receiver.close_port()  # refusing (a 503 is retried for 63 s on SDK 1.30)
            with self.assertLogs("os_trace_plugins", logging.INFO) as logs:
                for _ in range(3):  # three failing flushes, one outage
                    with tracer.start_as_current_span("lost"):
                        pass
                    processor.force_flush(5000)
                receiver.reopen_port()
                with tracer.start_as_current_span("kept"):
                    pass
                processor.force_flush(5000)
            spans = receiver.wait_for(1)
        said = [(r.levelname, r.getMessage()) for r in logs.records]
        self.assertEqual([lvl for lvl, _ in said], ["WARNING", "INFO"], said)
        self.assertIn("export to otlp://test is failing", said[0][1])
        self.assertIn("is back after", said[1][1])
        self.assertIn("3 spans dropped during the outage (3 in failed exports, 0 refused",
                      said[1][1])
        self.assertEqual([s.name for s in spans], ["kept"])
        self.assertEqual((processor.outage.failed, processor.outage.delivered), (3, 1))

    def test_a_full_queue_refuses_new_spans_and_counts_them(self) -> None:
        with OTLPReceiver() as receiver:
            receiver.set_fault("blackhole")
            provider, processor = self.pipeline(receiver, queue=16)
            tracer = provider.get_tracer("t")
            for _ in range(200):
                with tracer.start_as_current_span("s"):
                    pass
            self.assertLessEqual(processor.pending, 16)
            self.assertGreaterEqual(processor.outage.overflow, 200 - 2 * 16)
            processor.shutdown()
        made = 200
        outage = processor.outage
        self.assertEqual(outage.overflow + outage.failed + processor.pending
                         + outage.delivered, made)

    def test_flush_and_shutdown_keep_their_deadline_with_a_black_hole(self) -> None:
        with OTLPReceiver() as receiver:
            receiver.set_fault("blackhole")
            provider, processor = self.pipeline(receiver, queue=2048,
                                                shutdown_timeout=0.5)
            tracer = provider.get_tracer("t")
            for _ in range(2000):  # four batches, each would wait 0.5 s and retry
                with tracer.start_as_current_span("s"):
                    pass
            t0 = time.monotonic()
            self.assertFalse(processor.force_flush(300))
            flushed = time.monotonic() - t0
            t0 = time.monotonic()
            with self.assertLogs("os_trace_plugins", logging.WARNING) as logs:
                processor.shutdown()
            took = time.monotonic() - t0
        self.assertLess(flushed, 0.3 + 0.5)
        self.assertLess(took, 0.5 + 1.5)
        self.assertIn("exiting while export to otlp://test is failing",
                      logs.records[-1].getMessage())
