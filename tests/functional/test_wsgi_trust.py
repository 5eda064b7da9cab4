"""Unsigned and bad inbound headers: never trusted, never raising; the peer contrast."""

from __future__ import annotations

import base64
import logging
import uuid
from typing import Any

import webob
from opentelemetry import context, trace
from opentelemetry.trace import SpanKind
from oslo_config import cfg
from oslo_middleware import tracing as oslo_tracing

from os_trace_plugins._flagged import SQL_BAGGAGE_KEY
from os_trace_plugins.wsgi import TracingMiddleware, signed_headers
from os_trace_plugins.wsgi import _signing as signing
from tests import base
from tests.functional.test_wsgi_middleware import KEY, MiddlewareTestBase

CLAIMED_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLAIMED_SPAN = "00f067aa0ba902b7"
CLAIMED = f"00-{CLAIMED_TRACE}-{CLAIMED_SPAN}-01"


class UnsignedTraceparentTest(MiddlewareTestBase):
    def test_new_root_with_a_link_to_the_claimed_parent(self) -> None:
        self.get(headers={"traceparent": CLAIMED})
        span = self.server_span()
        self.assertIsNone(span.parent)
        self.assertNotEqual(f"{span.context.trace_id:032x}", CLAIMED_TRACE)
        self.assertEqual(len(span.links), 1)
        link = span.links[0]
        self.assertEqual(f"{link.context.trace_id:032x}", CLAIMED_TRACE)
        self.assertEqual(f"{link.context.span_id:016x}", CLAIMED_SPAN)
        self.assertEqual(span.attributes["os_trace.trust"], "unsigned-linked")

    def test_unsigned_sampled_flag_cannot_force_sampling(self) -> None:
        self.bind(sampling_rate=0.0)
        resp = self.get(headers={"traceparent": CLAIMED})
        self.assertEqual(self.spans(), [])
        self.assertNotIn("traceparent", resp.headers)

    def test_trusted_by_option(self) -> None:
        self.bind(trust_unsigned_traceparent=True, sampling_rate=0.0)
        self.get(headers={"traceparent": CLAIMED, "baggage": "tenant=a"})
        span = self.server_span()
        self.assertEqual(f"{span.context.trace_id:032x}", CLAIMED_TRACE)
        self.assertEqual(f"{span.parent.span_id:016x}", CLAIMED_SPAN)
        self.assertEqual(self.app.seen[0]["baggage"], {"tenant": "a"})

    def test_unsigned_baggage_is_dropped_and_cannot_ask_for_sql(self) -> None:
        self.get(headers={"traceparent": CLAIMED,
                          "baggage": f"{SQL_BAGGAGE_KEY}=1,tenant=a"})
        self.get(headers={"baggage": f"{SQL_BAGGAGE_KEY}=1"})
        self.assertEqual([s["baggage"] for s in self.app.seen], [{}, {}])

    def test_signed_request_keeps_other_baggage_but_not_ours(self) -> None:
        headers = signed_headers(KEY)
        headers["baggage"] = f"{SQL_BAGGAGE_KEY}=1,tenant=a,os_trace.x=2"
        self.get(headers=headers)
        self.assertEqual(self.app.seen[0]["baggage"], {"tenant": "a"})


class BadInputTest(MiddlewareTestBase):
    """Every bad header is served as unsigned: 200, no trust, no exception."""

    def bad_headers(self) -> dict[str, dict[str, str]]:
        good = signed_headers(KEY)
        other_key = signed_headers("some-other-key")
        info, mac = signing.osprofiler_pack({"base_id": str(uuid.uuid4())}, KEY)
        tp = good["traceparent"]
        sig = good[signing.SIGNATURE_HEADER]
        return {
            "missing signature": {"traceparent": tp},
            "forged": {"traceparent": tp, signing.SIGNATURE_HEADER: sig[:-4] + "beef"},
            "truncated": {"traceparent": tp, signing.SIGNATURE_HEADER: sig[:30]},
            "oversized": {"traceparent": tp, signing.SIGNATURE_HEADER: sig + "0" * 9000},
            "other key": other_key,
            "moved to another traceparent": {
                "traceparent": CLAIMED, signing.SIGNATURE_HEADER: sig},
            "stale": {"traceparent": tp, signing.SIGNATURE_HEADER:
                      signing.sign_traceparent(KEY, tp, now=1000)},
            "bad traceparent": {"traceparent": "00-zz-yy-01",
                                signing.SIGNATURE_HEADER: sig},
            "huge traceparent": {"traceparent": "00-" + "a" * 8000},
            "osp forged": {"X-Trace-Info": info, "X-Trace-HMAC": "0" * 40},
            "osp truncated": {"X-Trace-Info": info[:-6], "X-Trace-HMAC": mac},
            "osp oversized": {"X-Trace-Info": info * 50, "X-Trace-HMAC": mac},
            "osp non-base64": {"X-Trace-Info": "%%%%", "X-Trace-HMAC": mac},
            "osp non-json": {"X-Trace-Info": base64.urlsafe_b64encode(b"nope").decode(),
                             "X-Trace-HMAC": mac},
            "osp other key": dict(zip(("X-Trace-Info", "X-Trace-HMAC"),
                                      signing.osprofiler_pack(
                                          {"base_id": str(uuid.uuid4())}, "nope"), strict=True)),
            "osp hmac only": {"X-Trace-HMAC": mac},
            "garbage baggage": {"traceparent": CLAIMED, "baggage": "=;;,,%%" * 3000},
        }

    def test_none_trusted_none_raises(self) -> None:
        self.bind(sampling_rate=0.0)  # anything recorded was trusted
        for name, headers in self.bad_headers().items():
            with self.subTest(name):
                resp = self.get(headers=headers)
                self.assertEqual(resp.status_int, 200)
                self.assertEqual(self.spans(), [], name)
        self.assertTrue(all(s["baggage"] == {} for s in self.app.seen))

    def test_rejections_are_logged_at_a_bounded_rate(self) -> None:
        signing.BAD_INPUT.reset()
        headers = {"traceparent": CLAIMED, signing.SIGNATURE_HEADER:
                   signing.sign_traceparent("other", CLAIMED)}
        with self.assertLogs("os_trace_plugins.wsgi", logging.WARNING) as logs:
            for _ in range(100):
                self.get(headers=headers)
        self.assertEqual(len(logs.records), 1)


class NoKeysTest(MiddlewareTestBase):
    def test_signed_headers_without_keys_are_served_unsigned_and_said_once(self) -> None:
        self.bind(hmac_keys=" , ")
        signing.BAD_INPUT.reset()
        with self.assertLogs("os_trace_plugins.wsgi", logging.WARNING) as logs:
            for _ in range(5):
                self.get(headers=signed_headers(KEY))
        self.assertEqual(len(logs.records), 1)
        self.assertIn("hmac_keys is empty", logs.output[0])
        self.assertEqual({s.attributes["os_trace.trust"] for s in self.spans()},
                         {"unsigned-linked"})


class OsloMiddlewareContrastTest(base.TestCase):
    """oslo.middleware 8.2's TracingMiddleware continues any inbound traceparent,
    and leaves its span current (never ended) when the app raises."""

    def _oslo(self, app: Any) -> Any:
        conf = cfg.ConfigOpts()
        conf(args=[], default_config_files=[])
        oslo_tracing._register_opts(conf)
        conf.set_override("enabled", True, group="oslo_middleware_tracing")
        conf.set_override("service_name", "x", group="oslo_middleware_tracing")
        self.addCleanup(setattr, oslo_tracing, "_INITIALIZED", oslo_tracing._INITIALIZED)
        oslo_tracing._INITIALIZED = True  # use our test provider, not its own OTLP one
        return oslo_tracing.TracingMiddleware(app, conf)

    def test_peer_trusts_anonymous_traceparent_we_do_not(self) -> None:
        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            start_response("200 OK", [])
            return [b"ok"]

        for mw in (self._oslo(app), TracingMiddleware(app, conf=self.conf)):
            webob.Request.blank("/", headers={"traceparent": CLAIMED}).get_response(mw)
        peer, ours = [s for s in self.spans() if s.kind == SpanKind.SERVER]
        self.assertEqual(f"{peer.context.trace_id:032x}", CLAIMED_TRACE)
        self.assertEqual(f"{peer.parent.span_id:016x}", CLAIMED_SPAN)
        self.assertNotEqual(f"{ours.context.trace_id:032x}", CLAIMED_TRACE)
        self.assertIsNone(ours.parent)

    def test_app_exception_peer_leaks_its_span_we_do_not(self) -> None:
        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            raise RuntimeError("boom")

        for mw in (self._oslo(app), TracingMiddleware(app, conf=self.conf)):
            with self.assertRaises(RuntimeError):
                webob.Request.blank("/").get_response(mw)
            current = trace.get_current_span()
            if isinstance(mw, TracingMiddleware):
                self.assertIs(current, trace.INVALID_SPAN)
            else:  # oslo.middleware: process_response never runs, the span stays current
                self.assertTrue(current.is_recording())
                context.attach(context.Context())  # clean up after the peer
        ours, = self.spans()  # the peer's span is never ended, so never exported
        self.assertEqual(ours.attributes["error.type"], "RuntimeError")
