"""The requests hook against a loopback WSGI server running our middleware."""

from __future__ import annotations

import socket
import threading
import wsgiref.simple_server
from typing import Any

import requests
from keystoneauth1 import session as ks_session
from opentelemetry import baggage, context, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind, StatusCode

from os_trace_plugins._flagged import SQL_BAGGAGE_KEY
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.wsgi import TracingMiddleware
from os_trace_plugins.wsgi import _outgoing as outgoing
from os_trace_plugins.wsgi import _signing as signing
from os_trace_plugins.wsgi._outgoing import RequestsHook, keystoneauth_headers
from tests import base
from tests.secret_values import HMAC_KEY, TEMP_URL_SIG, URL_PASSWORD

KEY = HMAC_KEY


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class OutgoingTest(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.bind(hmac_keys=KEY, trace_requests=True)
        self.seen: list[dict[str, Any]] = []

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            self.seen.append({"baggage": dict(baggage.get_all()),
                              "sig": environ.get("HTTP_X_OS_TRACE_SIGNATURE")})
            status = "500 Oops" if environ["PATH_INFO"] == "/fail" else "200 OK"
            start_response(status, [("Content-Type", "text/plain")])
            return [b"ok"]

        self.server = wsgiref.simple_server.make_server(
            "127.0.0.1", 0, TracingMiddleware(app, conf=self.conf),
            handler_class=_QuietHandler)
        self.server.timeout = 5
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.thread.join, 5)
        self.addCleanup(self.server.shutdown)
        self.hook = RequestsHook()
        self.hook.instrument(self.conf, self.provider)
        self.addCleanup(self.hook.uninstrument)

    def kinds(self, kind: SpanKind) -> list[Any]:
        return [s for s in self.spans() if s.kind == kind]

    def test_client_span_and_signed_headers_continue_the_trace(self) -> None:
        authority = self.url.replace("http://", f"http://swift:{URL_PASSWORD}@")
        with self.tracer.start_as_current_span("nova-api handler") as parent:
            resp = requests.get(authority + f"/v1/AUTH_a/c/o?temp_url_sig={TEMP_URL_SIG}&"
                                "temp_url_expires=99&multipart-manifest", timeout=5)
        self.assertEqual(resp.status_code, 200)
        client, = self.kinds(SpanKind.CLIENT)
        server, = self.kinds(SpanKind.SERVER)
        self.assertChildOf(client, parent)  # type: ignore[arg-type]
        self.assertChildOf(server, client)
        self.assertEqual(server.attributes["os_trace.trust"], "signed")
        self.assertEqual(client.name, "GET")
        self.assertEqual(client.attributes["http.response.status_code"], 200)
        self.assertEqual(client.attributes["server.port"], self.server.server_port)
        self.assertEqual(client.attributes["url.full"],  # keys kept, values and user not
                         self.url + "/v1/AUTH_a/c/o?temp_url_sig=REDACTED&"
                         "temp_url_expires=REDACTED&multipart-manifest")
        self.assertNotIn(KEY, str(self.seen[0]["sig"]))

    def test_sql_flag_travels_signed(self) -> None:
        token = context.attach(baggage.set_baggage(SQL_BAGGAGE_KEY, "1"))
        try:
            with self.tracer.start_as_current_span("handler"):
                requests.get(self.url, timeout=5)
        finally:
            context.detach(token)
        self.assertEqual(self.seen[0]["baggage"], {SQL_BAGGAGE_KEY: "1"})
        self.assertIn("f=sql", self.seen[0]["sig"])

    def test_without_a_key_the_next_api_only_links(self) -> None:
        self.hook.uninstrument()
        self.bind(hmac_keys="")
        self.hook.instrument(self.conf, self.provider)
        with self.tracer.start_as_current_span("handler"):
            requests.get(self.url, timeout=5)
        server, = self.kinds(SpanKind.SERVER)
        client, = self.kinds(SpanKind.CLIENT)
        self.assertIsNone(server.parent)
        self.assertEqual(server.links[0].context.span_id, client.context.span_id)

    def test_server_error_and_connection_error(self) -> None:
        requests.get(self.url + "/fail", timeout=5)
        client, = self.kinds(SpanKind.CLIENT)
        self.assertEqual(client.status.status_code, StatusCode.ERROR)
        self.exporter.clear()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        with self.assertRaises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{dead}/", timeout=5)
        client, = self.kinds(SpanKind.CLIENT)
        self.assertEqual(client.attributes["error.type"], "requests.exceptions.ConnectionError")
        self.assertEqual(client.status.status_code, StatusCode.ERROR)

    def test_switch_off_and_suppressed_calls_are_untouched(self) -> None:
        SWITCHES.set("trace_requests", False)
        requests.get(self.url, timeout=5)
        self.assertEqual(self.kinds(SpanKind.CLIENT), [])
        self.assertIsNone(self.seen[-1]["sig"])
        SWITCHES.set("trace_requests", True)
        with suppress_instrumentation():
            requests.get(self.url, timeout=5)
        self.assertEqual(self.kinds(SpanKind.CLIENT), [])
        self.assertEqual(len(self.seen), 2)  # the call itself went through

    def test_private_suppression_key_still_agrees_with_the_public_api(self) -> None:
        """Fails loudly if the API renames the key the SDK sets around exports
        (our fallback reader without opentelemetry-instrumentation)."""
        self.assertTrue(hasattr(context, "_SUPPRESS_INSTRUMENTATION_KEY"))
        self.assertTrue(outgoing._api_enabled())
        with suppress_instrumentation():
            self.assertFalse(outgoing._api_enabled())
        token = context.attach(context.set_value(
            context._SUPPRESS_INSTRUMENTATION_KEY, True))  # type: ignore[attr-defined]
        try:
            self.assertFalse(outgoing._api_enabled())
        finally:
            context.detach(token)

    def test_instrumenting_imports_nothing_of_requests(self) -> None:
        import subprocess
        import sys

        code = ("import sys\n"
                "from os_trace_plugins.wsgi._outgoing import RequestsHook\n"
                "RequestsHook().instrument()\n"
                "print(sorted(m for m in sys.modules if m.split('.')[0] == 'requests'))\n"
                "import requests\n"
                "print(type(requests.Session.__dict__['send']).__name__)\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.stdout.split("\n")[:2], ["[]", "FunctionWrapper"],
                         out.stderr)

    def test_uninstrument_restores_requests(self) -> None:
        original = requests.Session.send.__wrapped__  # type: ignore[attr-defined]
        self.hook.uninstrument()
        self.assertIs(requests.Session.send, original)
        self.hook.uninstrument()  # idempotent

    def test_keystoneauth_session_is_covered_and_helper_signs(self) -> None:
        sess = ks_session.Session()
        with self.tracer.start_as_current_span("handler"):
            sess.get(self.url + "/v2.0/networks", authenticated=False)
            headers = keystoneauth_headers()
        server, = self.kinds(SpanKind.SERVER)
        self.assertEqual(server.attributes["os_trace.trust"], "signed")
        self.assertIsNotNone(signing.verify_traceparent(
            headers["traceparent"], headers[signing.SIGNATURE_HEADER], (KEY,), 60))

    def test_keystoneauth_headers_keep_the_trace_decision(self) -> None:
        self.assertEqual(keystoneauth_headers(), {})  # no span: nothing to continue
        unsampled = trace.NonRecordingSpan(trace.SpanContext(
            0xABC, 0xDEF, is_remote=False, trace_flags=trace.TraceFlags(0)))
        with trace.use_span(unsampled):
            headers = keystoneauth_headers(sql=True)
        self.assertTrue(headers["traceparent"].endswith("-00"))
        self.assertEqual(signing.verify_traceparent(
            headers["traceparent"], headers[signing.SIGNATURE_HEADER], (KEY,), 60),
            signing.SignedTraceparent(sql=True, root=False))


class OSProfilerDownstreamTest(base.TestCase):
    """A downstream API still running OSProfiler's middleware continues our trace."""

    def test_osprofiler_middleware_gets_our_trace_as_base_id(self) -> None:
        from osprofiler import _utils as osp_utils
        from osprofiler import profiler
        from osprofiler import web as osp_web

        self.bind(hmac_keys=KEY, trace_requests=True, send_osprofiler_headers=True)
        seen: list[tuple[str, str]] = []

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            p = profiler.get()
            seen.append((p.get_base_id(), p.get_parent_id()) if p else ("", ""))
            start_response("200 OK", [])
            return [b"ok"]

        server = wsgiref.simple_server.make_server(
            "127.0.0.1", 0, osp_web.WsgiMiddleware(app, hmac_keys=KEY, enabled=True),
            handler_class=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever,
                                  kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(thread.join, 5)
        self.addCleanup(server.shutdown)
        hook = RequestsHook()
        hook.instrument(self.conf, self.provider)
        self.addCleanup(hook.uninstrument)
        url = f"http://127.0.0.1:{server.server_port}/"
        with self.tracer.start_as_current_span("handler"):
            requests.get(url, timeout=5)
        SWITCHES.set("send_osprofiler_headers", False)
        with self.tracer.start_as_current_span("handler"):
            requests.get(url, timeout=5)
        client = [s for s in self.spans() if s.kind == SpanKind.CLIENT][0]
        base_id, parent_id = seen[0]
        self.assertEqual(osp_utils.uuid_to_int128(base_id), client.context.trace_id)
        self.assertEqual(osp_utils.shorten_id(parent_id), client.context.span_id)
        self.assertEqual(seen[1], ("", ""))  # switched off: OSProfiler sees nothing
