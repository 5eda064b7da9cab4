"""A real OTLP/HTTP receiver on loopback that decodes the protobuf.

There is no Jaeger or Collector binary here, so export is tested against this:
it accepts ``POST /v1/traces`` with ``application/x-protobuf`` bodies, decodes
each ``ExportTraceServiceRequest`` with opentelemetry-proto and keeps the
decoded spans with their resource attributes for assertions.  The
cross-process tests (tests/real) run child services that export to it with
the real OTLP exporter and wait for their spans with :meth:`wait_until`.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests import leakscan

__all__ = ["OTLPReceiver", "ReceivedSpan"]


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    status_code: int
    events: list[str] = field(default_factory=list)
    #: (trace_id, span_id) of each span link, hex
    links: list[tuple[str, str]] = field(default_factory=list)

    @property
    def service(self) -> str:
        """The ``service.name`` of the process that exported the span."""
        return str(self.resource.get("service.name"))


class OTLPReceiver:
    """``with OTLPReceiver() as r: ... r.endpoint ... r.wait_for(n)``.

    Or ``r = OTLPReceiver().start()`` ... ``r.stop()`` when its life spans a
    test class.
    """

    def __init__(self, port: int = 0) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        #: a collector fault (tests/reliability): None (healthy), "503" (answer
        #: 503 Service Unavailable) or "blackhole" (read the request, never answer);
        #: a refusing collector is :meth:`close_port` ... :meth:`reopen_port`
        self.fault: str | None = None
        self.refused = 0
        self._released = threading.Event()
        self.content_types: list[str] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                fault = receiver.fault
                if fault == "blackhole":  # accepted, read, never answered
                    del body  # a held request keeps no memory of the test process
                    receiver._released.wait(60)
                    self.close_connection = True
                    return
                if fault == "503":
                    receiver.refused += 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                leakscan.scan_payload(body)  # the session-wide secret scan
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                receiver._add(req, self.headers.get("Content-Type", ""))
                out = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        #: port: 0 for any free port, or a given one (a collector coming back)
        self._handler = Handler
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.endpoint = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def set_fault(self, fault: str | None) -> None:
        """Switch the fault; a black hole's held requests are let go when it ends."""
        self.fault = fault
        if fault == "blackhole":
            self._released.clear()
        else:
            self._released.set()

    def close_port(self) -> None:
        """Stop listening: connections are refused until :meth:`reopen_port`."""
        self.stop()

    def reopen_port(self) -> None:
        """Listen on the same port again (the collector is back)."""
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _add(self, req: ExportTraceServiceRequest, content_type: str) -> None:
        found = []
        for rs in req.resource_spans:
            resource = {a.key: _value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    found.append(ReceivedSpan(
                        name=s.name, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(), kind=s.kind,
                        attributes={a.key: _value(a.value) for a in s.attributes},
                        resource=resource, scope=ss.scope.name,
                        status_code=s.status.code,
                        events=[e.name for e in s.events],
                        links=[(ln.trace_id.hex(), ln.span_id.hex()) for ln in s.links]))
        with self._cond:
            self.requests += 1
            self.content_types.append(content_type)
            self.spans.extend(found)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.spans) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.spans)

    def wait_until(self, predicate: Callable[[list[ReceivedSpan]], bool],
                   timeout: float = 15.0) -> list[ReceivedSpan]:
        """Spans once ``predicate(spans)`` holds, or what arrived by the deadline."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(list(self.spans)):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.spans)

    def start(self) -> OTLPReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
