"""A small OpenStack-like API service for the cross-process tests.

Run as ``python -m tests.real.wsgi_service --name svc-a --otlp-port P
--key K --ready-file F [--downstream URL] [--max-seconds N]``.

It calls ``os_trace_plugins.setup()`` (OTLP/HTTP export to the test's
receiver, ``trace_requests`` on), serves ``TracingMiddleware(app)`` with
wsgiref on a free loopback port (written to ``--ready-file``), and on SIGTERM
shuts tracing down (flushing its spans) and exits. ``--max-seconds`` bounds
its life even if the test dies.

Routes: ``/call`` calls ``--downstream``'s ``/leaf`` through ``requests`` and
returns what it answered; ``/leaf`` returns the baggage it saw. More legs
(an oslo.messaging RPC call, a SQL query) are added with ``--leg
module:function`` (``fn(conf) -> str``; they land in :data:`EXTRA_LEGS`):
each runs inside the request span of ``/call`` (after the downstream call)
and of ``/leaf``, and its result is returned under ``legs``.  The RPC leg is
``tests.real.rpc_conductor:rpc_leg``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import wsgiref.simple_server
from collections.abc import Callable
from typing import Any

#: Extra work done inside ``/call`` (integration adds the RPC leg here).
EXTRA_LEGS: dict[str, Callable[[Any], str]] = {}


class _Quiet(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def build_conf(args: argparse.Namespace) -> Any:
    from oslo_config import cfg

    from os_trace_plugins import opts

    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf(args=[], project="wsgi-real-test", default_config_files=[])
    for name, value in {"enabled": True, "trace_requests": True, "hmac_keys": args.key,
                        "connection_string": f"otlp://127.0.0.1:{args.otlp_port}",
                        "export_timeout": 5.0, "service_name": args.name}.items():
        conf.set_override(name, value, group="profiler")
    return conf


def make_app(conf: Any, downstream: str | None) -> Callable[..., list[bytes]]:
    import requests
    from opentelemetry import baggage

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        body: dict[str, Any] = {"baggage": dict(baggage.get_all())}
        if path == "/call" and downstream:
            resp = requests.get(downstream + "/leaf", timeout=20)
            body["downstream"] = resp.json()
            body["downstream_traceparent"] = resp.headers.get("traceparent")
            body["legs"] = {name: leg(conf) for name, leg in EXTRA_LEGS.items()}
        elif path == "/leaf" and EXTRA_LEGS:
            body["legs"] = {name: leg(conf) for name, leg in EXTRA_LEGS.items()}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    return app


def internal_leg(conf: Any) -> str:
    """A sample leg: an INTERNAL span inside the request (RPC legs follow this shape)."""
    from opentelemetry import trace

    with trace.get_tracer("tests.real.leg").start_as_current_span("leg") as span:
        return f"{span.get_span_context().span_id:016x}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--otlp-port", type=int, required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ready-file", required=True)
    p.add_argument("--downstream")
    p.add_argument("--leg", action="append", default=[], help="module:function")
    p.add_argument("--max-seconds", type=int, default=60)
    args = p.parse_args(argv)

    import os_trace_plugins
    from os_trace_plugins.wsgi import TracingMiddleware

    for spec in args.leg:
        module, _, fn = spec.partition(":")
        EXTRA_LEGS[spec] = getattr(importlib.import_module(module), fn)
    conf = build_conf(args)
    if not os_trace_plugins.setup(conf, service=args.name, host="127.0.0.1"):
        print("tracing did not start", file=sys.stderr)
        return 3

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGALRM, stop)
    signal.alarm(args.max_seconds)
    server = wsgiref.simple_server.make_server(
        "127.0.0.1", 0, TracingMiddleware(make_app(conf, args.downstream), conf=conf),
        handler_class=_Quiet)
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(str(server.server_port))
    os.replace(tmp, args.ready_file)
    try:
        server.serve_forever(poll_interval=0.1)
    except SystemExit:
        pass
    finally:
        server.server_close()
        os_trace_plugins.shutdown()  # flushes the batch processor to the receiver
    return 0


if __name__ == "__main__":
    sys.exit(main())
