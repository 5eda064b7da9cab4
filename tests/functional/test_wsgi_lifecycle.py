"""The request's life at the edge: the SQL flag, streamed bodies, nesting, roots.

- ``_flagged.enter``/``leave`` bracket each request, until a streamed body
  is closed;
- a streamed body runs in the request's context, recorded or not;
- two middlewares on one request make one SERVER span;
- a signed root keeps the signer's trace id with our provider and becomes a
  linked new root with a host's provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import webob
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind

from os_trace_plugins import _flagged
from os_trace_plugins.wsgi import TracingMiddleware, signed_headers
from os_trace_plugins.wsgi import _signing as signing
from tests.functional.test_wsgi_middleware import KEY, MiddlewareTestBase


def _environ(headers: dict[str, str] | None = None) -> dict[str, Any]:
    return webob.Request.blank("/v2/servers", headers=headers or {}).environ


class FlaggedRequestTest(MiddlewareTestBase):
    """The SQL hook learns when a flagged request runs (and only then)."""

    def setUp(self) -> None:
        super().setUp()
        _flagged.reset()
        self.addCleanup(_flagged.reset)
        self.events: list[bool] = []
        _flagged.subscribe(self.events.append)
        self.addCleanup(_flagged.unsubscribe, self.events.append)
        self.running: list[int] = []

    def counting_app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.running.append(_flagged.running())
        start_response("200 OK", [])
        return [b"ok"]

    def test_flagged_request_enters_and_leaves(self) -> None:
        self.get(headers=signed_headers(KEY, sql=True),
                 app=TracingMiddleware(self.counting_app, conf=self.conf))
        self.assertEqual(self.running, [1])
        self.assertEqual(self.events, [True, False])
        self.assertEqual(_flagged.running(), 0)

    def test_unflagged_and_unsigned_sql_requests_do_not(self) -> None:
        mw = TracingMiddleware(self.counting_app, conf=self.conf)
        self.get(headers=signed_headers(KEY), app=mw)
        self.get(headers={"baggage": f"{_flagged.SQL_BAGGAGE_KEY}=1"}, app=mw)
        self.assertEqual(self.running, [0, 0])
        self.assertEqual(self.events, [])

    def test_streamed_body_stays_flagged_until_closed(self) -> None:
        def body() -> Iterator[bytes]:
            self.running.append(_flagged.running())
            yield b"a"

        def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
            start_response("200 OK", [])
            return body()

        result = TracingMiddleware(app, conf=self.conf)(
            _environ(signed_headers(KEY, sql=True)), lambda *a: None)
        self.assertEqual(b"".join(result), b"a")
        self.assertEqual(_flagged.running(), 1)
        result.close()  # type: ignore[attr-defined]
        result.close()  # type: ignore[attr-defined]  # a second close changes nothing
        self.assertEqual(self.running, [1])
        self.assertEqual((_flagged.running(), self.events), (0, [True, False]))

    def test_app_error_leaves_too(self) -> None:
        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            raise KeyError("host bug")

        for recorded in (True, False):
            if not recorded:  # a host's provider dropping every root
                self.install_provider(sampler=ParentBased(ALWAYS_OFF))
            with self.assertRaises(KeyError):
                TracingMiddleware(app, conf=self.conf)(
                    _environ(signed_headers(KEY, sql=True)), lambda *a: None)
            self.assertEqual(_flagged.running(), 0)
            self.assertEqual(len(self.spans()), 1)  # only the first was recorded
        self.assertEqual(self.events, [True, False, True, False])


class StreamedUnsampledTest(MiddlewareTestBase):
    """An unsampled request's body runs in its context: work stays unsampled
    in the same trace instead of starting new roots."""

    def test_unsampled_stream_runs_in_the_request_context(self) -> None:
        self.bind(sampling_rate=0.0)
        seen: dict[str, Any] = {}

        def body() -> Iterator[bytes]:
            seen["body"] = trace.get_current_span().get_span_context()
            with self.tracer.start_as_current_span("db query") as child:
                seen["child"] = child.get_span_context()
            yield b"x"

        def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
            seen["app"] = trace.get_current_span().get_span_context()
            start_response("200 OK", [])
            return body()

        result = TracingMiddleware(app, conf=self.conf)(_environ(), lambda *a: None)
        self.assertIs(trace.get_current_span(), trace.INVALID_SPAN)
        self.assertEqual(list(result), [b"x"])
        result.close()  # type: ignore[attr-defined]
        self.assertTrue(seen["app"].is_valid)
        self.assertFalse(seen["app"].trace_flags.sampled)
        self.assertEqual(seen["body"], seen["app"])
        # the child followed the parent's decision: same trace, not recorded
        self.assertEqual(seen["child"].trace_id, seen["app"].trace_id)
        self.assertEqual(self.spans(), [])
        self.assertIs(trace.get_current_span(), trace.INVALID_SPAN)


class OneServerSpanTest(MiddlewareTestBase):
    def test_nested_middlewares_make_one_server_span(self) -> None:
        outer = TracingMiddleware(TracingMiddleware(self.app, conf=self.conf),
                                  conf=self.conf)
        self.get(headers=signed_headers(KEY), app=outer)
        span = self.server_span()
        self.assertEqual(self.app.seen[0]["span"].span_id, span.context.span_id)

    def test_a_marked_request_is_passed_through(self) -> None:
        environ = _environ()
        environ["os_trace_plugins.edge"] = True
        TracingMiddleware(self.app, conf=self.conf)(environ, lambda *a: None)
        self.assertEqual(self.spans(), [])
        self.assertFalse(self.app.seen[0]["span"].is_valid)


class SignedRootTest(MiddlewareTestBase):
    def setUp(self) -> None:
        super().setUp()
        self.bind(sampling_rate=0.0)  # signed roots are recorded anyway

    def test_root_keeps_the_signed_trace_id_and_baggage(self) -> None:
        headers = signed_headers(KEY, sql=True)
        self.get(headers=headers)
        span = self.server_span()
        self.assertIsNone(span.parent)
        self.assertEqual(span.links, ())
        self.assertEqual(f"{span.context.trace_id:032x}", headers["traceparent"][3:35])
        self.assertEqual(span.attributes["os_trace.trust"], "signed")
        self.assertEqual(self.app.seen[0]["baggage"],
                         {_flagged.SQL_BAGGAGE_KEY: "1"})
        # the requested id was for that span only
        with self.tracer.start_as_current_span("next root") as other:
            pass
        self.assertNotEqual(other.get_span_context().trace_id, span.context.trace_id)

    def test_osprofiler_root_keeps_base_id(self) -> None:
        headers = signing.osprofiler_headers(KEY)
        self.get(headers=headers)
        span = self.server_span()
        self.assertIsNone(span.parent)
        self.assertEqual(f"{span.context.trace_id:032x}",
                         signing.osprofiler_trace_id(headers["X-Trace-Info"]))

    def test_host_provider_gets_a_linked_new_root(self) -> None:
        # a host's provider: the SDK's id generator, its own parent-based sampler
        self.install_provider(sampler=ParentBased(ALWAYS_ON))
        headers = signed_headers(KEY, sql=True)
        self.get(headers=headers)
        span = self.server_span()
        self.assertIsNone(span.parent)
        self.assertNotEqual(f"{span.context.trace_id:032x}", headers["traceparent"][3:35])
        link, = span.links
        self.assertEqual(f"{link.context.trace_id:032x}", headers["traceparent"][3:35])
        self.assertEqual(f"{link.context.span_id:016x}", headers["traceparent"][36:52])
        self.assertEqual(link.attributes, {"os_trace.link": "signed_parent"})
        self.assertEqual(span.attributes["os_trace.trust"], "signed")
        self.assertEqual(dict(baggage.get_all()), {})
        self.assertEqual(self.app.seen[0]["baggage"], {_flagged.SQL_BAGGAGE_KEY: "1"})

    def test_continued_signed_trace_is_a_child(self) -> None:
        with self.tracer.start_as_current_span("operator") as op:
            headers = signed_headers(KEY)
        self.get(headers=headers)
        span = self.server_span()
        self.assertEqual(span.parent.span_id, op.get_span_context().span_id)
        self.assertEqual(span.kind, SpanKind.SERVER)
