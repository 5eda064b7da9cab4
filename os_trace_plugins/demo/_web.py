"""The demo API's HTTP server: wsgiref on 127.0.0.1, an ephemeral port, one thread.

The app is wrapped in :class:`os_trace_plugins.wsgi.TracingMiddleware` when
the WSGI package is installed (it creates the API's SERVER span from the
signed headers); without it the API still serves, and ``note`` says why its
span is missing.
"""

from __future__ import annotations

import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

__all__ = ["ApiServer"]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadedServer(WSGIServer):
    daemon_threads = True


class ApiServer:
    def __init__(self, app: Any, conf: Any) -> None:
        self.note: str | None = None
        try:
            from os_trace_plugins.wsgi import TracingMiddleware
        except ImportError as exc:
            self.note = f"WSGI middleware unavailable ({exc}): no API SERVER span"
        else:
            app = TracingMiddleware(app, conf=conf)
        self._server = make_server("127.0.0.1", 0, app, server_class=_ThreadedServer,
                                   handler_class=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="demo-api", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
