"""A Jaeger sampling-strategy endpoint on loopback, for the remote sampler tests.

It answers ``GET /sampling?service=NAME`` the way a Jaeger agent (port 5778),
the collector's ``/api/sampling`` and the OpenTelemetry Collector's
``jaegerremotesampling`` extension do, with whatever the test set as the
current answer, and records every query.  The bodies the tests serve are
written out literally from Jaeger's documented JSON (the constants below),
never produced by the code under test.  Besides a body, the answer can be a
status (500), a hang (the request is held until the test releases it or the
server stops) or a malformed body.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["StrategyServer", "probabilistic", "rate_limiting", "per_operation",
           "refusing_endpoint"]


def _fill(template: str, **values: object) -> str:
    """Jaeger's JSON as written in its documentation, with $NAME placeholders."""
    for name, value in values.items():
        template = template.replace(f"${name}", str(value))
    return template


def probabilistic(rate: float) -> str:
    """Jaeger's documented probabilistic answer."""
    return _fill('{"strategyType": "PROBABILISTIC", '
                 '"probabilisticSampling": {"samplingRate": $RATE}}', RATE=repr(rate))


def rate_limiting(per_second: float) -> str:
    """Jaeger's documented rate-limiting answer."""
    return _fill('{"strategyType": "RATE_LIMITING", '
                 '"rateLimitingSampling": {"maxTracesPerSecond": $MAX}}', MAX=repr(per_second))


def per_operation(default: float, lower: float, upper: float,
                  operations: dict[str, float]) -> str:
    """Jaeger's documented per-operation answer (with the probabilistic
    fields a collector sends beside it)."""
    entries = ", ".join(
        _fill('{"operation": $OP, "probabilisticSampling": {"samplingRate": $RATE}}',
              OP=json.dumps(name), RATE=repr(rate)) for name, rate in operations.items())
    return _fill('{"strategyType": "PROBABILISTIC", '
                 '"probabilisticSampling": {"samplingRate": $DEFAULT}, '
                 '"operationSampling": {"defaultSamplingProbability": $DEFAULT, '
                 '"defaultLowerBoundTracesPerSecond": $LOWER, '
                 '"perOperationStrategies": [$ENTRIES], '
                 '"defaultUpperBoundTracesPerSecond": $UPPER}}',
                 DEFAULT=repr(default), LOWER=repr(lower), UPPER=repr(upper), ENTRIES=entries)


def refusing_endpoint() -> str:
    """An endpoint on loopback where nothing listens (connection refused)."""
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/sampling"


class StrategyServer:
    """``with StrategyServer(body) as s: ... s.endpoint ... s.set(...)``."""

    def __init__(self, body: str | None = None) -> None:
        self._lock = threading.Lock()
        self._answer: tuple[str, Any] = ("body", body or probabilistic(1.0))
        self._release = threading.Event()
        self._stopping = threading.Event()
        self.queries: list[dict[str, list[str]]] = []
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with server._lock:
                    server.queries.append(parse_qs(parts.query))
                    server.paths.append(parts.path)
                    kind, value = server._answer
                if kind == "hang":
                    while not (server._release.is_set() or server._stopping.is_set()):
                        time.sleep(0.01)
                    return
                if kind == "status":
                    self.send_response(int(value))
                    self.end_headers()
                    return
                data = str(value).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/sampling"

    def set(self, body: str) -> None:
        """Serve ``body`` (a JSON text, or anything malformed) from now on."""
        with self._lock:
            self._answer = ("body", body)

    def status(self, code: int) -> None:
        with self._lock:
            self._answer = ("status", code)

    def hang(self) -> None:
        """Hold every request open, never answering."""
        self._release.clear()
        with self._lock:
            self._answer = ("hang", None)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.queries)

    def wait_queries(self, n: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count >= n:
                return True
            time.sleep(0.01)
        return False

    def start(self) -> StrategyServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> StrategyServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
