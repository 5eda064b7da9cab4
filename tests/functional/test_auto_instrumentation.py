"""``opentelemetry-instrument`` loads our RPC hook through its entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import unittest
from typing import Any

SCRIPT = textwrap.dedent('''
    import oslo_messaging as messaging
    from oslo_config import cfg
    from opentelemetry import trace

    cfg.CONF([])  # oslo.messaging registers its own groups on the global conf only
    transport = messaging.get_rpc_transport(cfg.CONF, "fake:///")

    class Endpoint:
        def ping(self, ctxt, x):
            return x + 1

    server = messaging.get_rpc_server(transport, messaging.Target(topic="t", server="s"),
                                      [Endpoint()], executor="threading")
    server.start()
    client = messaging.get_rpc_client(transport, messaging.Target(topic="t"))
    with trace.get_tracer("app").start_as_current_span("root"):
        assert client.call({}, "ping", x=1) == 2
    server.stop()
    server.wait()
    trace.get_tracer_provider().force_flush()
''')


def _documents(text: str) -> list[dict[str, Any]]:
    decoder, docs, i = json.JSONDecoder(), [], 0
    while True:
        i = text.find("{", i)
        if i < 0:
            return docs
        doc, i = decoder.raw_decode(text, i)
        docs.append(doc)


class TestOpentelemetryInstrument(unittest.TestCase):
    def test_rpc_spans_through_auto_instrumentation(self) -> None:
        tool = shutil.which("opentelemetry-instrument",
                            path=os.path.dirname(sys.executable))
        self.assertIsNotNone(tool, "opentelemetry-instrument is installed with the test extra")
        env = dict(os.environ,
                   OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none",
                   OTEL_LOGS_EXPORTER="none",
                   # the third-party oslo.messaging instrumentation (bench extra) is a peer
                   OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="oslo_messaging,oslo_service")
        proc = subprocess.run([str(tool), sys.executable, "-c", SCRIPT], env=env,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        spans = {d["name"]: d for d in _documents(proc.stdout) if "name" in d}
        self.assertEqual(set(spans), {"root", "ping call", "ping process"}, proc.stdout)
        root, call, process = spans["root"], spans["ping call"], spans["ping process"]
        self.assertEqual(call["kind"], "SpanKind.CLIENT")
        self.assertEqual(process["kind"], "SpanKind.SERVER")
        self.assertEqual(call["parent_id"], root["context"]["span_id"])
        self.assertEqual(process["parent_id"], call["context"]["span_id"])
        self.assertEqual(process["context"]["trace_id"], root["context"]["trace_id"])
