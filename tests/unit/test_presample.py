"""The root decision made before the SDK: same outcome as the SDK's sampler."""

from __future__ import annotations

import webob
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, TraceIdRatioBased

from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.export.presample import Presampler
from os_trace_plugins.wsgi import TracingMiddleware
from tests import base


def _app(environ: dict, start_response: object) -> list[bytes]:
    start_response("200 OK", [])  # type: ignore[operator]
    return [b"ok"]


class PresampleTest(base.TestCase):
    use_live_sampler = True

    def test_rate_is_kept_and_matches_trace_id_ratio(self) -> None:
        SWITCHES.set("sampling_rate", 0.5)
        mw = TracingMiddleware(_app)
        ids = []
        for _ in range(400):
            resp = webob.Request.blank("/").get_response(mw)
            ids.append(resp.headers.get("traceparent"))
        recorded = self.spans()
        self.assertTrue(120 < len(recorded) < 280, len(recorded))
        bound = TraceIdRatioBased.get_bound_for_rate(0.5)
        for span in recorded:
            self.assertLess(span.context.trace_id & ((1 << 64) - 1), bound)
            self.assertIsNone(span.parent)
            self.assertTrue(span.context.trace_flags.sampled)
        self.assertEqual(len([i for i in ids if i]), len(recorded))

    def test_dropped_requests_still_give_children_an_unsampled_parent(self) -> None:
        SWITCHES.set("sampling_rate", 0.0)
        seen = []

        def app(environ: dict, start_response: object) -> list[bytes]:
            with self.tracer.start_as_current_span("child") as child:
                seen.append((trace.get_current_span().get_span_context(), child))
            return _app(environ, start_response)

        webob.Request.blank("/").get_response(TracingMiddleware(app))
        self.assertEqual(self.spans(), [])
        ctx, child = seen[0]
        self.assertFalse(ctx.trace_flags.sampled)
        self.assertFalse(child.is_recording())

    def test_other_samplers_decide_themselves(self) -> None:
        self.assertIsNone(Presampler().decide() if not isinstance(
            trace.get_tracer_provider(), TracerProvider) else None)
        base.reset_globals()
        trace.set_tracer_provider(TracerProvider(sampler=ALWAYS_ON))
        self.assertIsNone(Presampler().decide())
        base.reset_globals()
        trace.set_tracer_provider(self.provider)
        self.assertIsNotNone(Presampler().decide())

    def test_no_provider_installed_is_a_pass_through(self) -> None:
        base.reset_globals()  # as in a service where tracing is not set up
        seen = []

        def app(environ: dict, start_response: object) -> list[bytes]:
            seen.append(trace.get_current_span())
            return _app(environ, start_response)

        resp = webob.Request.blank("/", headers={"traceparent": "00-" + "1" * 32 + "-"
                                                 + "2" * 16 + "-01"}).get_response(
            TracingMiddleware(app))
        self.assertEqual(resp.status_int, 200)
        self.assertNotIn("traceparent", resp.headers)
        self.assertIs(seen[0], trace.INVALID_SPAN)
