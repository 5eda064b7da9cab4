"""TracingMiddleware around a webob app: spans, attributes, errors, trust rules."""

from __future__ import annotations

import uuid
from typing import Any

import routes
import routes.middleware
import webob
import webob.dec
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from oslo_context import context as oslo_context
from oslo_middleware import request_id
from osprofiler import _utils as osp_utils

from os_trace_plugins._flagged import SQL_BAGGAGE_KEY
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.export import _ids as ids
from os_trace_plugins.export import _sampler as sampler
from os_trace_plugins.wsgi import TracingMiddleware, signed_headers
from os_trace_plugins.wsgi import _signing as signing
from tests import base
from tests.secret_values import HMAC_KEY

KEY = HMAC_KEY


class Recorder:
    """A webob app that remembers what it saw of the trace context."""

    def __init__(self, status: int = 200, body: bytes = b"ok",
                 error: BaseException | None = None) -> None:
        self.status, self.body, self.error = status, body, error
        self.seen: list[dict[str, Any]] = []

    @webob.dec.wsgify
    def __call__(self, req: webob.Request) -> webob.Response:
        self.seen.append({"span": trace.get_current_span().get_span_context(),
                          "baggage": dict(baggage.get_all())})
        if self.error is not None:
            raise self.error
        return webob.Response(self.body, status=self.status)


class MiddlewareTestBase(base.TestCase):
    """The provider setup() builds: live ratio sampler and our id generator."""

    use_live_sampler = True

    def setUp(self) -> None:
        super().setUp()
        self.install_provider(id_generator=ids.RequestableIdGenerator())
        self.bind(hmac_keys=KEY)
        self.app = Recorder()
        self.mw = TracingMiddleware(self.app, conf=self.conf)

    def install_provider(self, **kwargs: Any) -> None:
        """Replace the base class's provider (kept running: it shares the exporter)."""
        base.reset_globals()
        kwargs.setdefault("sampler", sampler.build_sampler())
        self.provider = TracerProvider(**kwargs)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        trace.set_tracer_provider(self.provider)
        self.tracer = self.provider.get_tracer("tests")

    def get(self, path: str = "/v2/servers", headers: dict[str, str] | None = None,
            app: Any = None) -> webob.Response:
        req = webob.Request.blank(path, headers=headers or {})
        return req.get_response(app or self.mw)

    def server_span(self) -> Any:
        spans = [s for s in self.spans() if s.kind == SpanKind.SERVER]
        self.assertEqual(len(spans), 1, [s.name for s in spans])
        return spans[0]


class SpanTest(MiddlewareTestBase):
    def test_one_server_span_with_http_attributes(self) -> None:
        resp = self.get("/v2/servers?x=1", {"User-Agent": "python-novaclient",
                                           "Host": "nova.example:8774"})
        self.assertEqual(resp.status_int, 200)
        span = self.server_span()
        self.assertEqual(span.name, "GET")
        attrs = dict(span.attributes or {})
        self.assertEqual(attrs["http.request.method"], "GET")
        self.assertEqual(attrs["url.path"], "/v2/servers")
        self.assertEqual(attrs["url.scheme"], "http")
        self.assertEqual(attrs["server.address"], "nova.example")
        self.assertEqual(attrs["server.port"], 8774)
        self.assertEqual(attrs["user_agent.original"], "python-novaclient")
        self.assertEqual(attrs["http.response.status_code"], 200)
        self.assertIsNone(span.parent)
        self.assertEqual(span.status.status_code, StatusCode.UNSET)
        # the app ran inside the span, the response names it
        self.assertEqual(self.app.seen[0]["span"].span_id, span.context.span_id)
        sc = span.context
        self.assertEqual(resp.headers["traceparent"],
                         f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}")
        self.assertNotIn("os_trace.trust", attrs)  # no trace headers: nothing to trust

    def test_5xx_is_an_error_4xx_is_not(self) -> None:
        self.app.status = 503
        self.get()
        span = self.server_span()
        self.assertEqual(span.status.status_code, StatusCode.ERROR)
        self.assertEqual(span.attributes["http.response.status_code"], 503)
        self.exporter.clear()
        self.app.status = 404
        self.get()
        self.assertEqual(self.server_span().status.status_code, StatusCode.UNSET)

    def test_app_exception_propagates_unchanged(self) -> None:
        boom = RuntimeError("host bug")
        self.app.error = boom
        req = webob.Request.blank("/")
        with self.assertRaises(RuntimeError) as caught:
            req.call_application(self.mw)
        self.assertIs(caught.exception, boom)
        span = self.server_span()
        self.assertEqual(span.status.status_code, StatusCode.ERROR)
        self.assertEqual(span.attributes["error.type"], "RuntimeError")
        self.assertEqual([e.name for e in span.events], ["exception"])
        self.assertIs(trace.get_current_span(), trace.INVALID_SPAN)

    def test_route_and_openstack_ids(self) -> None:
        ctx = oslo_context.RequestContext(project_id="p1", user_id="u1",
                                          global_request_id="req-" + str(uuid.uuid4()))

        @webob.dec.wsgify
        def server(req: webob.Request) -> webob.Response:
            req.environ["openstack.context"] = ctx
            return webob.Response("ok")

        mapper = routes.Mapper()
        mapper.connect("/{project_id}/servers/{id}", controller=server)
        router = routes.middleware.RoutesMiddleware(
            lambda env, sr: env["wsgiorg.routing_args"][1]["controller"](env, sr), mapper)
        app = TracingMiddleware(request_id.RequestId(router), conf=self.conf)
        resp = self.get("/p1/servers/abc", app=app)
        span = self.server_span()
        attrs = dict(span.attributes or {})
        self.assertEqual(span.name, "GET /{project_id}/servers/{id}")
        self.assertEqual(attrs["http.route"], "/{project_id}/servers/{id}")
        self.assertEqual(attrs["openstack.request_id"],
                         resp.headers["x-openstack-request-id"])
        self.assertEqual(attrs["openstack.global_request_id"], ctx.global_request_id)
        self.assertEqual(attrs["openstack.project_id"], "p1")
        self.assertEqual(attrs["openstack.user_id"], "u1")

    def test_streamed_body_span_ends_on_close(self) -> None:
        closed: list[bool] = []

        inside: list[Any] = []

        class Body:
            def __iter__(self) -> Any:
                yield b"a"
                inside.append(trace.get_current_span().get_span_context())
                yield b"b"

            def close(self) -> None:
                closed.append(True)

        def app(environ: dict[str, Any], start_response: Any) -> Body:
            start_response("200 OK", [("traceparent", "spoofed")])
            return Body()

        mw = TracingMiddleware(app, conf=self.conf)
        captured: dict[str, Any] = {}
        result = mw(webob.Request.blank("/").environ,
                    lambda s, h, e=None: captured.update(status=s, headers=h))
        self.assertEqual(b"".join(result), b"ab")
        self.assertEqual(self.spans(), [])
        result.close()  # type: ignore[attr-defined]
        self.assertEqual(closed, [True])
        span = self.server_span()
        self.assertEqual(inside[0].span_id, span.context.span_id)  # streamed in context
        self.assertIs(trace.get_current_span(), trace.INVALID_SPAN)
        self.assertEqual(span.attributes["http.response.status_code"], 200)
        self.assertEqual([v for k, v in captured["headers"] if k == "traceparent"],
                         [f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-"
                          f"{int(span.context.trace_flags):02x}"])

    def test_streamed_body_error_marks_the_span(self) -> None:
        def body() -> Any:
            yield b"a"
            raise ValueError("disk gone")

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            start_response("200 OK", [])
            return body()

        result = TracingMiddleware(app, conf=self.conf)(
            webob.Request.blank("/").environ, lambda s, h, e=None: None)
        with self.assertRaises(ValueError):
            list(result)
        result.close()  # type: ignore[attr-defined]
        span = self.server_span()
        self.assertEqual(span.attributes["error.type"], "ValueError")
        self.assertEqual(span.status.status_code, StatusCode.ERROR)

    def test_switch_off_is_a_pass_through_and_follows_the_switch(self) -> None:
        SWITCHES.set("trace_wsgi", False)
        resp = self.get()
        self.assertEqual(resp.status_int, 200)
        self.assertNotIn("traceparent", resp.headers)
        self.assertEqual(self.spans(), [])
        SWITCHES.set("trace_wsgi", True)
        self.get()
        self.server_span()

    def test_paste_enabled_false_turns_it_off(self) -> None:
        mw = TracingMiddleware.factory({}, enabled="false")(self.app)
        self.get(app=mw)
        self.assertEqual(self.spans(), [])


class SignedRequestTest(MiddlewareTestBase):
    def setUp(self) -> None:
        super().setUp()
        self.bind(sampling_rate=0.0)  # signed requests are recorded anyway

    def test_unsigned_request_not_sampled_at_rate_zero(self) -> None:
        resp = self.get()
        self.assertEqual(self.spans(), [])
        self.assertNotIn("traceparent", resp.headers)
        self.assertFalse(self.app.seen[0]["span"].trace_flags.sampled)

    def test_our_signature_continues_the_trace_and_forces_recording(self) -> None:
        with self.tracer.start_as_current_span("operator") as caller:
            headers = signed_headers(KEY)
        self.get(headers=headers)
        span = self.server_span()
        sc = caller.get_span_context()
        self.assertFalse(sc.trace_flags.sampled)  # the operator's side is not recorded
        self.assertEqual((span.context.trace_id, span.parent.span_id),
                         (sc.trace_id, sc.span_id))
        self.assertEqual(span.attributes["os_trace.trust"], "signed")
        self.assertNotIn(SQL_BAGGAGE_KEY, self.app.seen[0]["baggage"])

    def test_signature_without_span_makes_a_root_with_the_signed_trace_id(self) -> None:
        headers = signed_headers(KEY)
        self.get(headers=headers)
        span = self.server_span()
        self.assertIsNone(span.parent)
        self.assertEqual(f"{span.context.trace_id:032x}", headers["traceparent"][3:35])

    def test_sql_flag_becomes_baggage(self) -> None:
        self.get(headers=signed_headers(KEY, sql=True))
        self.assertEqual(self.app.seen[0]["baggage"], {SQL_BAGGAGE_KEY: "1"})

    def test_key_rotation(self) -> None:
        self.bind(hmac_keys="new-key, ,old-key,")
        self.get(headers=signed_headers("old-key"))
        self.server_span()

    def test_osprofiler_headers_map_ids_and_force_recording(self) -> None:
        base_id, parent_id = str(uuid.uuid4()), str(uuid.uuid4())
        info, mac = osp_utils.signed_pack({"base_id": base_id, "parent_id": parent_id}, KEY)
        self.get(headers={"X-Trace-Info": info.decode(), "X-Trace-HMAC": mac or ""})
        span = self.server_span()
        self.assertEqual(span.context.trace_id, osp_utils.uuid_to_int128(base_id))
        self.assertEqual(span.parent.span_id, osp_utils.shorten_id(parent_id))
        self.assertEqual(span.attributes["os_trace.trust"], "osprofiler")

    def test_osprofiler_headers_can_be_refused(self) -> None:
        SWITCHES.set("accept_osprofiler_headers", False)
        self.get(headers=signing.osprofiler_headers(KEY))
        self.assertEqual(self.spans(), [])  # served as a plain request, not sampled
        SWITCHES.set("accept_osprofiler_headers", True)
        self.get(headers=signing.osprofiler_headers(KEY))
        self.server_span()

    def test_osprofiler_root_header_gives_a_root_span(self) -> None:
        headers = signing.osprofiler_headers(KEY)
        self.get(headers=headers)
        span = self.server_span()
        self.assertIsNone(span.parent)
        self.assertEqual(f"{span.context.trace_id:032x}",
                         signing.osprofiler_trace_id(headers["X-Trace-Info"]))

    def test_public_default_key_is_never_trusted(self) -> None:
        self.bind(hmac_keys="SECRET_KEY")
        info, mac = osp_utils.signed_pack({"base_id": str(uuid.uuid4())}, "SECRET_KEY")
        self.get(headers={"X-Trace-Info": info.decode(), "X-Trace-HMAC": mac or ""})
        self.get(headers=signed_headers("SECRET_KEY"))
        self.assertEqual(self.spans(), [])

    def test_paste_hmac_keys(self) -> None:
        mw = TracingMiddleware.factory({}, hmac_keys="paste-key")(self.app)
        self.get(headers=signed_headers("paste-key"), app=mw)
        self.server_span()
