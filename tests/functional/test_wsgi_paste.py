"""A real paste.deploy pipeline from a config file, as api-paste.ini builds it."""

from __future__ import annotations

import os
import textwrap
from typing import Any

import webob
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from paste.deploy import loadapp

from os_trace_plugins.wsgi import TracingMiddleware, signed_headers
from tests import base

SEEN: list[Any] = []


def app_factory(global_conf: dict[str, Any], **local_conf: Any) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        SEEN.append(trace.get_current_span().get_span_context())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    return app


PIPELINE = """
[pipeline:main]
pipeline = {filter} request_id app

[filter:{filter}]
{use}
{options}

[filter:request_id]
paste.filter_factory = oslo_middleware:RequestId.factory

[app:app]
paste.app_factory = tests.functional.test_wsgi_paste:app_factory
"""


class PastePipelineTest(base.TestCase):
    def load(self, use: str, options: str = "hmac_keys = paste-key",
             name: str = "tracing") -> Any:
        path = os.path.join(self.tmpdir, "api-paste.ini")
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(PIPELINE.format(filter=name, use=use, options=options)))
        return loadapp(f"config:{path}", name="main")

    def find_middleware(self, app: Any) -> TracingMiddleware:
        self.assertIsInstance(app, TracingMiddleware)
        return app  # type: ignore[no-any-return]

    def run_signed(self, app: Any, key: str = "paste-key") -> Any:
        SEEN.clear()
        resp = webob.Request.blank("/v3/things", headers=signed_headers(key)).get_response(
            app)
        self.assertEqual(resp.status_int, 200)
        servers = [s for s in self.spans() if s.kind == SpanKind.SERVER]
        self.assertEqual(len(servers), 1)
        span = servers[0]
        self.assertEqual(span.attributes["os_trace.trust"], "signed")
        self.assertEqual(span.attributes["openstack.request_id"],
                         resp.headers["x-openstack-request-id"])
        self.assertEqual(SEEN[0].span_id, span.context.span_id)
        return span

    def test_entry_point_by_name(self) -> None:
        app = self.load("use = egg:os_trace_plugins#os_trace_plugins")
        self.find_middleware(app)
        self.run_signed(app)

    def test_filter_factory_path(self) -> None:
        app = self.load(
            "paste.filter_factory = os_trace_plugins.wsgi:TracingMiddleware.factory")
        self.run_signed(app)

    def test_osprofiler_section_switched_to_us_keeps_its_options(self) -> None:
        app = self.load(
            "paste.filter_factory = os_trace_plugins.wsgi:TracingMiddleware.factory",
            options="hmac_keys = SECRET_KEY, rotated-key ,\nenabled = yes",
            name="osprofiler")
        self.run_signed(app, key="rotated-key")
        self.exporter.clear()
        public = signed_headers("SECRET_KEY")
        resp = webob.Request.blank("/", headers=public).get_response(app)
        self.assertEqual(resp.status_int, 200)
        span = self.spans()[0]
        self.assertEqual(span.attributes["os_trace.trust"], "unsigned-linked")
        self.assertNotEqual(resp.headers["traceparent"][3:35], public["traceparent"][3:35])

    def test_disabled_in_paste(self) -> None:
        app = self.load("use = egg:os_trace_plugins#os_trace_plugins",
                        options="enabled = false")
        webob.Request.blank("/").get_response(app)
        self.assertEqual(self.spans(), [])


class OSProfilerRegisteredFirstTest(base.TestCase):
    """nova registers OSProfiler's [profiler] first (hmac_keys default SECRET_KEY)."""

    def test_keys_from_osprofiler_owned_option(self) -> None:
        from oslo_config import cfg
        from osprofiler import opts as osp_opts

        from os_trace_plugins import opts

        conf = cfg.ConfigOpts()
        osp_opts.set_defaults(conf)
        opts.register_opts(conf)
        conf(args=[], default_config_files=[])
        self.assertIn("hmac_keys", opts.foreign_opts(conf))
        app = TracingMiddleware(app_factory({}), conf=conf)
        for key in ("SECRET_KEY", "real-key"):  # the public default is not trusted
            webob.Request.blank("/", headers=signed_headers(key)).get_response(app)
        conf.set_override("hmac_keys", "SECRET_KEY, real-key", group="profiler")
        for key in ("SECRET_KEY", "real-key"):
            webob.Request.blank("/", headers=signed_headers(key)).get_response(app)
        self.assertEqual([s.attributes["os_trace.trust"] for s in self.spans()],
                         ["unsigned-linked", "unsigned-linked", "unsigned-linked", "signed"])
