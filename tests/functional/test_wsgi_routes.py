"""Route templates name the SERVER span: pecan, Flask and python-routes apps.

Real apps driven through webob with the ``wsgi_servers`` hook instrumented
(it teaches us pecan's routes) and the middleware around the app.
"""

from __future__ import annotations

from typing import Any

import flask
import pecan
import routes
import routes.middleware
import webob
import webob.dec
from pecan import rest

from os_trace_plugins import _hooks
from os_trace_plugins.wsgi import TracingMiddleware
from os_trace_plugins.wsgi._servers import WSGIServersHook
from tests.base import TestCase


class NodesController(rest.RestController):
    @pecan.expose("json")
    def get_all(self) -> list[str]:
        return []

    @pecan.expose("json")
    def get_one(self, node_ident: str) -> dict[str, str]:
        return {"uuid": node_ident}

    @pecan.expose("json")
    def put(self, node_ident: str) -> dict[str, str]:
        return {"uuid": node_ident}


class PortsController:
    @pecan.expose("json")
    def index(self) -> list[str]:
        return []


class ChassisItem:
    ports = PortsController()


class ChassisController:
    @pecan.expose()
    def _lookup(self, chassis_id: str, *remainder: str) -> Any:
        return ChassisItem(), remainder


class V1:
    nodes = NodesController()
    chassis = ChassisController()

    @pecan.expose("json")
    def drivers(self, name: str) -> dict[str, str]:
        return {"name": name}

    @pecan.expose("json")
    def health(self) -> dict[str, str]:
        return {}


class Root:
    v1 = V1()


class RoutesTest(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.hook = _hooks.shared(WSGIServersHook)
        self.hook.instrument(self.conf, self.provider)
        self.addCleanup(self.hook.uninstrument)

    def call(self, app: Any, method: str, path: str, script_name: str = "") -> Any:
        req = webob.Request.blank(path, method=method)
        req.environ["SCRIPT_NAME"] = script_name
        resp = req.get_response(TracingMiddleware(app, conf=self.conf))
        self.assertLess(resp.status_code, 500, resp.text)
        spans = [s for s in self.spans() if s.kind.name == "SERVER"]
        self.assertEqual(len(spans), 1)
        self.exporter.clear()
        return spans[0]

    def assertRoute(self, span: Any, name: str, route: str | None) -> None:
        self.assertEqual(span.name, name)
        self.assertEqual((span.attributes or {}).get("http.route"), route)

    def test_pecan(self) -> None:
        app = pecan.make_app(Root())
        cases = [
            ("GET", "/v1/nodes/abc-1", "GET /v1/nodes/{node_ident}"),
            ("PUT", "/v1/nodes/abc-1", "PUT /v1/nodes/{node_ident}"),
            ("GET", "/v1/nodes", "GET /v1/nodes"),
            ("GET", "/v1/drivers/ipmi", "GET /v1/drivers/{name}"),
            ("GET", "/v1/health", "GET /v1/health"),
            ("GET", "/v1/chassis/1f0e7a4c-3d7c-4d0e-9b2b-3c2f8e1b6a10/ports/",
             "GET /v1/chassis/{id}/ports/"),
        ]
        for method, path, name in cases:
            with self.subTest(path=path):
                self.assertRoute(self.call(app, method, path), name, name.split(" ", 1)[1])

    def test_pecan_without_the_hook_keeps_the_method(self) -> None:
        self.hook.uninstrument()
        span = self.call(pecan.make_app(Root()), "GET", "/v1/nodes/abc-1")
        self.assertRoute(span, "GET", None)

    def test_flask(self) -> None:
        app = flask.Flask("routes-test")

        @app.route("/v1/nodes/<node_ident>")
        def node(node_ident: str) -> str:
            return node_ident

        @app.route("/v1/ports/<int:port_id>/<path:rest>", methods=["PUT"])
        def port(port_id: int, rest: str) -> str:
            return "ok"

        self.assertRoute(self.call(app.wsgi_app, "GET", "/v1/nodes/n1"),
                         "GET /v1/nodes/{node_ident}", "/v1/nodes/{node_ident}")
        self.assertRoute(self.call(app.wsgi_app, "PUT", "/v1/ports/3/a/b"),
                         "PUT /v1/ports/{port_id}/{rest}", "/v1/ports/{port_id}/{rest}")
        self.assertRoute(self.call(app.wsgi_app, "GET", "/nowhere"), "GET", None)

    def test_routes_under_a_mount_point(self) -> None:
        @webob.dec.wsgify
        def server(req: webob.Request) -> webob.Response:
            return webob.Response("ok")

        mapper = routes.Mapper()
        mapper.connect("/servers/{id:[0-9a-f-]+}", controller=server)
        mapper.connect("/flavors/:(flavor_id)/os-extra_specs", controller=server)
        router = routes.middleware.RoutesMiddleware(
            lambda env, sr: env["wsgiorg.routing_args"][1]["controller"](env, sr), mapper)
        self.assertRoute(self.call(router, "GET", "/servers/ab-12", script_name="/v2.1"),
                         "GET /v2.1/servers/{id}", "/v2.1/servers/{id}")
        self.assertRoute(self.call(router, "GET", "/flavors/7/os-extra_specs"),
                         "GET /flavors/{flavor_id}/os-extra_specs",
                         "/flavors/{flavor_id}/os-extra_specs")


    def test_routes_matched_by_the_app_itself(self) -> None:
        """placement's handler: mapper.match(environ=...) with no RoutesMiddleware."""
        mapper = routes.Mapper()
        mapper.connect("/resource_providers/{uuid}", action="show")
        mapper.connect("/resource_providers", action="list")

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            result = mapper.match(environ=environ)
            status = "200 OK" if result is not None else "404 Not Found"
            start_response(status, [("Content-Type", "text/plain")])
            return [repr(result).encode()]

        self.assertRoute(self.call(app, "GET", "/resource_providers/ab12"),
                         "GET /resource_providers/{uuid}", "/resource_providers/{uuid}")
        self.assertRoute(self.call(app, "GET", "/resource_providers"),
                         "GET /resource_providers", "/resource_providers")
        self.assertRoute(self.call(app, "GET", "/nowhere"), "GET", None)
        # the app's answer is the one plain python-routes gives
        self.assertEqual(mapper.match("/resource_providers/x"),
                         {"action": "show", "uuid": "x"})
        self.assertEqual(mapper.match(environ={"PATH_INFO": "/resource_providers/y"}),
                         {"action": "show", "uuid": "y"})
        self.assertIsNone(mapper.match(environ={"PATH_INFO": "/nowhere"}))


class NormalizeTest(TestCase):
    """Every router's variable syntax is written ``{name}``."""

    def test_syntaxes(self) -> None:
        from os_trace_plugins.wsgi._attributes import normalize_route

        cases = [
            ("/{project_id}/servers/{id}", "routes", "/{project_id}/servers/{id}"),
            ("/servers/:(id)/action", "routes", "/servers/{id}/action"),
            ("/x/:id/y", "routes", "/x/{id}/y"),
            ("/a/{id:\\d{1,3}}", "routes", "/a/{id}"),
            ("/f/*path", "routes", "/f/{path}"),
            ("/servers/{id}.{format}", "routes", "/servers/{id}.{format}"),
            ("/n/<int:id>/<path:rest>", "werkzeug", "/n/{id}/{rest}"),
            ("/a/<any(x, y):kind>", "werkzeug", "/a/{kind}"),
            ("/v1/nodes/<node_ident>", "werkzeug", "/v1/nodes/{node_ident}"),
        ]
        for template, kind, expected in cases:
            with self.subTest(template=template):
                self.assertEqual(normalize_route(template, kind), expected)
