"""Our requests hook beside contrib's RequestsInstrumentor, in either order.

One CLIENT span per request, and the downstream API (our middleware on a
loopback server) sees a traceparent with a valid X-OS-Trace-Signature for
that span, so it continues the trace as signed.
"""

from __future__ import annotations

import threading
import wsgiref.simple_server
from typing import Any

import requests
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.trace import SpanKind

from os_trace_plugins.wsgi import TracingMiddleware
from os_trace_plugins.wsgi import _signing as signing
from os_trace_plugins.wsgi._outgoing import RequestsHook
from tests import base
from tests.functional.test_wsgi_outgoing import _QuietHandler
from tests.secret_values import HMAC_KEY_OLD

KEY = HMAC_KEY_OLD


class ContribTogetherTest(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.bind(hmac_keys=KEY, trace_requests=True)
        self.seen: list[dict[str, Any]] = []

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            self.seen.append({"traceparent": environ.get("HTTP_TRACEPARENT"),
                              "sig": environ.get("HTTP_X_OS_TRACE_SIGNATURE")})
            start_response("200 OK", [])
            return [b"ok"]

        server = wsgiref.simple_server.make_server(
            "127.0.0.1", 0, TracingMiddleware(app, conf=self.conf),
            handler_class=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever,
                                  kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(thread.join, 5)
        self.addCleanup(server.shutdown)
        self.url = f"http://127.0.0.1:{server.server_port}/v2/images?marker=abc"
        self.original = requests.Session.__dict__["send"]
        self.ours = RequestsHook()
        self.contrib = RequestsInstrumentor()

    def instrument(self, first: str) -> None:
        steps = {"ours": lambda: self.ours.instrument(self.conf, self.provider),
                 "contrib": lambda: self.contrib.instrument(tracer_provider=self.provider)}
        undo = {"ours": self.ours.uninstrument, "contrib": self.contrib.uninstrument}
        second = "contrib" if first == "ours" else "ours"
        steps[first]()
        self.addCleanup(undo[first])
        steps[second]()
        self.addCleanup(undo[second])

    def call_and_check(self) -> Any:
        with self.tracer.start_as_current_span("handler") as parent:
            self.assertEqual(requests.get(self.url, timeout=5).status_code, 200)
        clients = [s for s in self.spans() if s.kind == SpanKind.CLIENT]
        self.assertEqual(len(clients), 1, [s.name for s in clients])
        client = clients[0]
        self.assertEqual(client.parent.span_id, parent.get_span_context().span_id)
        sent = self.seen[-1]
        self.assertEqual(sent["traceparent"].split("-")[2], f"{client.context.span_id:016x}")
        self.assertIsNotNone(signing.verify_traceparent(
            sent["traceparent"], sent["sig"], (KEY,), 60))
        server, = [s for s in self.spans() if s.kind == SpanKind.SERVER]
        self.assertEqual(server.parent.span_id, client.context.span_id)
        self.assertEqual(server.attributes["os_trace.trust"], "signed")
        return client

    def test_ours_outer(self) -> None:
        self.instrument(first="contrib")
        client = self.call_and_check()
        self.assertEqual(client.instrumentation_scope.name, "os_trace_plugins.requests")
        self.assertEqual(client.attributes["url.full"],
                         self.url.replace("marker=abc", "marker=REDACTED"))

    def test_contrib_outer(self) -> None:
        self.instrument(first="ours")
        client = self.call_and_check()
        self.assertEqual(client.instrumentation_scope.name,
                         "opentelemetry.instrumentation.requests")

    def test_ours_alone_after_contrib_is_gone(self) -> None:
        self.instrument(first="ours")
        self.contrib.uninstrument()
        client = self.call_and_check()
        self.assertEqual(client.instrumentation_scope.name, "os_trace_plugins.requests")

    def test_both_removed_in_either_order_leaves_requests_untraced(self) -> None:
        for first in ("ours", "contrib"):
            self.exporter.clear()
            self.instrument(first=first)
            self.ours.uninstrument()
            self.contrib.uninstrument()
            with self.tracer.start_as_current_span("handler"):
                requests.get(self.url, timeout=5)
            self.assertEqual([s for s in self.spans() if s.kind == SpanKind.CLIENT], [])
            self.assertIsNone(self.seen[-1]["sig"])
