"""The API edge without paste: the app handed to a WSGI server is wrapped, once.

Real servers on 127.0.0.1 (ephemeral ports), real HTTP requests: wsgiref,
cheroot, and (in a monkey-patched child) eventlet.wsgi and oslo.service's
``wsgi.Server``.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref import simple_server

import cheroot.wsgi

from os_trace_plugins import _hooks
from os_trace_plugins.wsgi import TracingMiddleware
from os_trace_plugins.wsgi._servers import WSGIServersHook, wrap_application
from tests.base import TestCase
from tests.functional.threads_env import emit, run_child

CHILD = "tests.functional.test_wsgi_servers"


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def get(port: int, path: str = "/hello") -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return resp.read()  # type: ignore[no-any-return]


class _Quiet(simple_server.WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def wsgiref_server(app: Any) -> Iterator[int]:
    server = simple_server.make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class ServersTest(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.hook = _hooks.shared(WSGIServersHook)
        self.hook.instrument(self.conf, self.provider)
        self.addCleanup(self.hook.uninstrument)

    def server_spans(self) -> list[Any]:
        return [s for s in self.spans() if s.kind.name == "SERVER"]

    def test_wsgiref(self) -> None:
        with wsgiref_server(hello) as port:
            self.assertEqual(get(port), b"hello")
        [span] = self.server_spans()
        self.assertEqual(span.name, "GET")
        self.assertEqual(span.attributes["http.response.status_code"], 200)
        self.assertEqual(span.attributes["url.path"], "/hello")

    def test_cheroot(self) -> None:
        server = cheroot.wsgi.Server(("127.0.0.1", 0), hello, numthreads=2)
        server.prepare()
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        try:
            self.assertEqual(get(server.bind_addr[1]), b"hello")
        finally:
            server.stop()
            thread.join(10)
        [span] = self.server_spans()
        self.assertEqual(span.attributes["http.response.status_code"], 200)

    def test_an_app_already_wrapped_is_not_wrapped_again(self) -> None:
        app = TracingMiddleware(hello, conf=self.conf)
        self.assertIs(wrap_application(app), app)
        with wsgiref_server(app) as port:
            get(port)
        self.assertEqual(len(self.server_spans()), 1)

    def test_paste_filter_inside_and_server_wrap_outside_make_one_span(self) -> None:
        # a paste pipeline: our filter, then some other middleware around it
        inner = TracingMiddleware(hello, conf=self.conf)
        probe: dict[str, Any] = {}

        def pipeline(environ: dict[str, Any], start_response: Any) -> Any:
            probe.update(environ)
            return inner(environ, start_response)

        with wsgiref_server(pipeline) as port:
            get(port)
        self.assertIn("os_trace_plugins.edge", probe, "the middleware marks the environ")
        self.assertEqual(len(self.server_spans()), 1)

    def test_uninstrumented_servers_get_the_app_as_is(self) -> None:
        self.hook.uninstrument()
        with wsgiref_server(hello) as port:
            get(port)
        self.assertEqual(self.server_spans(), [])

    def test_eventlet_and_oslo_service(self) -> None:
        spans, result = run_child(f"{CHILD}:eventlet_servers", eventlet=True)
        self.assertEqual(result, ["hello", "hello"])
        server = [s for name, s in spans.items() if name.split("#")[0] == "GET"]
        self.assertEqual(sorted(s["attributes"]["url.path"] for s in server),
                         ["/eventlet", "/oslo"])


def eventlet_servers(provider: Any) -> None:
    import eventlet
    import eventlet.wsgi
    from oslo_service import backend

    backend.init_backend(backend.BackendType.EVENTLET)
    from oslo_config import cfg
    from oslo_service import wsgi as oslo_wsgi

    hook = _hooks.shared(WSGIServersHook)
    hook.instrument(None, provider)
    import logging

    quiet = logging.getLogger("quiet")
    quiet.disabled = True

    def named(path: str) -> Any:
        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            assert environ["PATH_INFO"] == path
            return hello(environ, start_response)
        return app

    sock = eventlet.listen(("127.0.0.1", 0))
    green = eventlet.spawn(eventlet.wsgi.server, sock, named("/eventlet"), log=quiet)
    conf = cfg.ConfigOpts()
    conf([], project="os-trace-threads-test", default_config_files=[])
    oslo = oslo_wsgi.Server(conf, "threads-test", named("/oslo"), host="127.0.0.1", port=0)
    oslo.start()
    bodies = []
    for port, path in ((sock.getsockname()[1], "/eventlet"), (oslo.port, "/oslo")):
        bodies.append(get(port, path).decode())
    oslo.stop()
    green.kill()
    emit(bodies)
