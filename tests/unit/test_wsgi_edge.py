"""Pure helpers of the API edge: trust decisions under fuzzing, attributes, the CLI."""

from __future__ import annotations

import contextlib
import io
import os
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace

from os_trace_plugins.cmd import _main as cmd_main
from os_trace_plugins.wsgi import _attributes as attributes
from os_trace_plugins.wsgi import _signing as signing
from os_trace_plugins.wsgi import _trust as trust
from tests import base

KEYS = ("k1", "k2")
_header = st.one_of(st.none(), st.text(max_size=300),
                    st.binary(max_size=200).map(lambda b: b.decode("latin-1")))


class TrustFuzzTest(base.TestCase):
    @settings(max_examples=300, deadline=None)
    @given(tp=_header, sig=_header, info=_header, mac=_header, bag=_header)
    def test_random_headers_never_raise_never_trusted(self, tp: str | None,
                                                      sig: str | None, info: str | None,
                                                      mac: str | None,
                                                      bag: str | None) -> None:
        environ = {k: v for k, v in {
            "HTTP_TRACEPARENT": tp, "HTTP_X_OS_TRACE_SIGNATURE": sig,
            "HTTP_X_TRACE_INFO": info, "HTTP_X_TRACE_HMAC": mac,
            "HTTP_BAGGAGE": bag}.items() if v is not None}
        decision = trust.decide(environ, KEYS, 3600, trust_unsigned=False)
        self.assertIn(decision.trust, ("none", "unsigned-linked"))
        self.assertIsNone(decision.context)

    def test_trusted_context_keeps_flags_and_ids(self) -> None:
        tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
        environ = {"HTTP_TRACEPARENT": tp, "HTTP_X_OS_TRACE_SIGNATURE":
                   signing.sign_traceparent("k2", tp)}
        decision = trust.decide(environ, KEYS, 3600, trust_unsigned=False)
        assert decision.context is not None
        sc = trace.get_current_span(decision.context).get_span_context()
        self.assertEqual(decision.trust, "signed")
        self.assertFalse(sc.trace_flags.sampled)  # the signed decision is kept
        self.assertTrue(sc.is_remote)
        self.assertEqual(f"{sc.span_id:016x}", "b7ad6b7169203331")


class AttributesTest(base.TestCase):
    def test_host_and_port_forms(self) -> None:
        cases = {
            "nova:8774": ("nova", 8774), "[::1]:8080": ("::1", 8080), "[fe80::1]": (
                "fe80::1", None), "api.example": ("api.example", None), "x:bad": ("x", None)}
        for host, expected in cases.items():
            with self.subTest(host):
                self.assertEqual(attributes._host_port({"HTTP_HOST": host}), expected)
        self.assertEqual(attributes._host_port({"SERVER_NAME": "s", "SERVER_PORT": "80"}),
                         ("s", 80))

    def test_ids_prefer_the_request_id_the_user_sees(self) -> None:
        ctx = mock.Mock(request_id="req-ctx", global_request_id=None, project_id="p",
                        user_id=None)
        ids = attributes.openstack_ids({
            "openstack.request_id": "req-env", "nova.context": ctx,
            "HTTP_X_IDENTITY_STATUS": "Confirmed", "HTTP_X_USER_ID": "u",
            "HTTP_X_PROJECT_ID": "ignored"})
        self.assertEqual(ids, {"openstack.request_id": "req-env",
                               "openstack.project_id": "p", "openstack.user_id": "u"})
        self.assertEqual(attributes.openstack_ids({"HTTP_X_USER_ID": "forged"}), {})


class MethodTest(base.TestCase):
    def test_unknown_methods_do_not_make_span_names(self) -> None:
        import webob

        from os_trace_plugins.wsgi import TracingMiddleware

        def app(environ: dict, start_response: object) -> list[bytes]:
            start_response("200 OK", [])  # type: ignore[operator]
            return [b""]

        req = webob.Request.blank("/", method="X" * 500)
        req.get_response(TracingMiddleware(app))
        span, = self.spans()
        self.assertEqual(span.name, "HTTP")
        self.assertEqual(span.attributes["http.request.method"], "_OTHER")
        self.assertEqual(span.attributes["http.request.method_original"], "X" * 64)


class SignCommandTest(base.TestCase):
    def run_cmd(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cmd_main.main(["sign", *argv])
        return code, out.getvalue(), err.getvalue()

    def test_prints_curl_arguments_that_verify(self) -> None:
        code, out, err = self.run_cmd("--key", "k1", "--sql", "--format", "lines")
        self.assertEqual(code, 0)
        headers = dict(line.split(": ", 1) for line in out.splitlines())
        got = signing.verify_traceparent(headers["traceparent"],
                                         headers[signing.SIGNATURE_HEADER], KEYS, 60)
        self.assertEqual(got, signing.SignedTraceparent(sql=True, root=True))
        self.assertIn(headers["traceparent"].split("-")[1], err)
        code, out, _ = self.run_cmd("--key", "k1")
        self.assertTrue(out.startswith("-H 'traceparent: 00-"), out)
        self.assertNotIn("k1", out)

    def test_key_from_environment_and_osprofiler_format(self) -> None:
        with mock.patch.dict(os.environ, {"OS_TRACE_HMAC_KEY": "k2"}):
            code, out, _ = self.run_cmd("--osprofiler", "--format", "lines")
        self.assertEqual(code, 0)
        headers = dict(line.split(": ", 1) for line in out.splitlines())
        self.assertIsNotNone(signing.osprofiler_verify(
            headers["X-Trace-Info"], headers["X-Trace-HMAC"], ("k2",)))

    def test_refuses_missing_and_public_keys(self) -> None:
        with mock.patch.dict(os.environ, {}, clear=True):
            self.assertEqual(self.run_cmd()[0], 2)
        code, out, err = self.run_cmd("--key", "SECRET_KEY")
        self.assertEqual((code, out), (2, ""))
        self.assertIn("public", err)
