"""``opentelemetry-instrument`` loads the threads and WSGI-server hooks by entry point.

An unmodified program: a pool task inside a span, and an app served by
wsgiref; the console exporter's output is read back.
"""

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
    import concurrent.futures, threading, urllib.request
    from wsgiref import simple_server
    from opentelemetry import trace

    def task():
        with trace.get_tracer("app").start_as_current_span("task"):
            pass

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with trace.get_tracer("app").start_as_current_span("root"):
            pool.submit(task).result()

    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"ok"]

    class Quiet(simple_server.WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = simple_server.make_server("127.0.0.1", 0, app, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/x", timeout=10).read()
    server.shutdown()
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


class AutoInstrumentTest(unittest.TestCase):

    def test_entry_points(self) -> None:
        tool = shutil.which("opentelemetry-instrument", path=os.path.dirname(sys.executable))
        self.assertIsNotNone(tool)
        env = dict(os.environ, OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none",
                   OTEL_LOGS_EXPORTER="none",
                   OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="oslo_messaging,oslo_service,"
                                                        "threading")
        proc = subprocess.run([str(tool), sys.executable, "-c", SCRIPT], env=env,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        spans = {d["name"]: d for d in _documents(proc.stdout) if "context" in d}
        self.assertEqual(spans["task"]["parent_id"], spans["root"]["context"]["span_id"])
        self.assertEqual(spans["GET"]["kind"], "SpanKind.SERVER")
        self.assertEqual(spans["GET"]["attributes"]["url.path"], "/x")
