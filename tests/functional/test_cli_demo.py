"""``os-trace demo``: what this branch guarantees on its own.

Without the RPC, SQL, driver and WSGI hooks (they land at integration) the
demo still runs end to end: three client requests through the API, the
conductor, the worker and the listener, one trace per request in the store,
the tree printed, the HTML report written, the missing pieces named.  The full
trace shape is asserted by tests/functional/test_demo_trace.py.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import unittest

from tests.functional.demo_helpers import run_demo_cli, traces_of
from tests.services import require_service


class DemoCliTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="os-trace-demo-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.store = os.path.join(self.tmp, "demo.db")

    def check_run(self, *extra: str) -> str:
        proc = run_demo_cli(self.store, *extra)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        out = proc.stdout
        # the progress line, step by step
        self.assertRegex(proc.stderr, r"os-trace demo \[1/6\] ")
        self.assertIn("os-trace demo [6/6] rendering trace", proc.stderr)
        shown = re.search(r"HTML report of trace ([0-9a-f]{32}): (\S+)", out)
        assert shown is not None, out
        trace_id, html = shown.groups()
        self.assertTrue(out.startswith(f"trace {trace_id}  "), out)
        self.assertIn("POST /servers  demo-client CLIENT http", out)
        with open(html, encoding="utf-8") as f:
            self.assertIn(trace_id, f.read())
        traces = traces_of(self.store)
        self.assertEqual(len(traces), 3)
        self.assertEqual(traces[0].trace_id, trace_id)
        first, second, failed = traces
        # the demo's own client span is the root of each request's trace
        for t in traces:
            self.assertEqual((t.roots[0].name, t.roots[0].kind), ("POST /servers", "CLIENT"))
            self.assertEqual(len(t.roots), 1)
        self.assertTrue(first.roots[0].attributes["os_trace.demo.sql_requested"])
        self.assertFalse(second.roots[0].attributes["os_trace.demo.sql_requested"])
        # the request the driver refuses fails end to end
        self.assertEqual(first.roots[0].attributes["http.response.status_code"], 202)
        self.assertEqual(failed.roots[0].attributes["http.response.status_code"], 500)
        self.assertTrue(failed.roots[0].error)
        self.assertIn(f"os-trace list --store {self.store}", out)
        return out

    def test_threads_over_fake_transport(self) -> None:
        out = self.check_run("--in-process")
        self.assertIn("Services ran as threads of one process over fake:// (--in-process)", out)

    def test_processes_over_rabbitmq(self) -> None:
        require_service("rabbitmq")
        out = self.check_run("--transport-url", "rabbit://guest:guest@127.0.0.1:5672/")
        self.assertIn("Services ran as separate processes over rabbit://", out)
        self.assertNotIn("guest:guest@", out, "the broker password is not printed")

    def test_bad_arguments(self) -> None:
        proc = run_demo_cli(self.store, "--in-process", "--transport-url", "fake://")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("either --transport-url or --in-process", proc.stderr)
        proc = run_demo_cli(self.store, "--in-process", "--db-url", "nosuchdb://x")
        self.assertEqual(proc.returncode, 1)
        self.assertNotIn("Traceback", proc.stderr)
        self.assertIn("sqlalchemy.dialects:nosuchdb", proc.stderr.strip().splitlines()[-1])
        proc = run_demo_cli(self.store, "--transport-url",
                            "rabbit://guest:guest@127.0.0.1:1/", timeout=30)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr.strip().splitlines(),
                         ["os-trace demo: no broker answers at 127.0.0.1:1 (Connection "
                          "refused); start it, fix --transport-url, or use --in-process"])


class ServiceNamerTest(unittest.TestCase):
    """The in-process demo names each span's service from where it runs."""

    def test_entry_spans_name_the_service_and_children_inherit(self) -> None:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )
        from opentelemetry.trace import SpanKind

        from os_trace_plugins.demo._roles import ServiceNamer

        memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(ServiceNamer())
        provider.add_span_processor(SimpleSpanProcessor(memory))
        t = provider.get_tracer("t")
        with t.start_as_current_span("POST /servers", kind=SpanKind.CLIENT):
            with t.start_as_current_span("POST", kind=SpanKind.SERVER):
                with t.start_as_current_span("demo_conductor.build_instance call",
                                             kind=SpanKind.CLIENT):
                    with t.start_as_current_span("demo_conductor.build_instance process",
                                                 kind=SpanKind.SERVER):
                        with t.start_as_current_span("SELECT", kind=SpanKind.CLIENT):
                            pass
                        with t.start_as_current_span("demo_worker.post_build cast",
                                                     kind=SpanKind.PRODUCER):
                            with t.start_as_current_span(
                                    "demo_worker.post_build process",
                                    kind=SpanKind.CONSUMER):
                                pass
                        with t.start_as_current_span("instance.create.end publish",
                                                     kind=SpanKind.PRODUCER):
                            with t.start_as_current_span(
                                    "instance.create.end process", kind=SpanKind.CONSUMER):
                                pass
        got = {s.name: (s.attributes or {})["service.name"]
               for s in memory.get_finished_spans()}
        self.assertEqual(got, {
            "POST /servers": "demo-client", "POST": "demo-api",
            "demo_conductor.build_instance call": "demo-api",
            "demo_conductor.build_instance process": "demo-conductor",
            "SELECT": "demo-conductor", "demo_worker.post_build cast": "demo-conductor",
            "demo_worker.post_build process": "demo-worker",
            "instance.create.end publish": "demo-conductor",
            "instance.create.end process": "demo-listener"})
        provider.shutdown()
