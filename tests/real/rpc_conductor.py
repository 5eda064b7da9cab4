"""A conductor-like RPC service on RabbitMQ and the RPC leg the API services call.

Run as ``python -m tests.real.rpc_conductor --otlp-port P --topic T
--exchange E --ready-file F [--max-seconds N]``: it calls
``os_trace_plugins.setup()`` (OTLP/HTTP export to the test's receiver,
``trace_sqlalchemy`` OFF, ``sql_trace_on_request`` on), serves one
oslo.messaging RPC endpoint on topic ``T`` of exchange ``E`` and writes
``READY`` to ``--ready-file``.  ``lookup`` runs one query on an in-memory
SQLite database through SQLAlchemy: a SQL span appears only when the request
carries the ``os_trace.sql=1`` baggage, which is what the test checks.  On
SIGTERM (or after ``--max-seconds``) it stops the server, flushes its spans
and exits.

:func:`rpc_leg` is the ``--leg tests.real.rpc_conductor:rpc_leg`` of
``tests.real.wsgi_service``: it calls ``lookup`` on the topic and exchange
named by the ``EDGE_RPC_TOPIC`` / ``EDGE_RPC_EXCHANGE`` environment variables.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Any

__all__ = ["rpc_leg", "main", "register_messaging_opts", "build_conf"]

RPC_TIMEOUT = 15


def register_messaging_opts(conf: Any) -> None:
    """Every oslo.messaging group the transport reads, on ``conf``.

    18.3 registers ``[oslo_messaging_tracing]`` / ``[oslo_messaging_metrics]``
    on the global CONF only; the rabbit group is registered here so that
    ``rabbit_transient_queues_ttl`` can be set before the transport exists
    (reply queues of the API processes then expire soon after the test).
    """
    from oslo_config import cfg
    from oslo_messaging import opts as om_opts
    from oslo_messaging._metrics import client as om_metrics
    from oslo_messaging._tracing import client as om_tracing

    groups = [(g, o) for g, o in om_opts.list_opts() if g == "oslo_messaging_rabbit"]
    groups += [("oslo_messaging_metrics", om_metrics.oslo_messaging_metrics),
               ("oslo_messaging_tracing", om_tracing.oslo_messaging_tracing)]
    for group, group_opts in groups:
        for opt in group_opts:
            try:
                conf.register_opt(opt, group=group)
            except cfg.DuplicateOptError:
                pass
    conf.set_override("rabbit_transient_queues_ttl", 30, group="oslo_messaging_rabbit")


def build_conf(otlp_port: int) -> Any:
    from oslo_config import cfg

    from os_trace_plugins import opts

    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf(args=[], project="edge-rpc-test", default_config_files=[], use_env=False)
    for name, value in {"enabled": True, "connection_string": f"otlp://127.0.0.1:{otlp_port}",
                        "export_timeout": 5.0, "trace_sqlalchemy": False,
                        "sql_trace_on_request": True}.items():
        conf.set_override(name, value, group="profiler")
    register_messaging_opts(conf)
    return conf


class Conductor:
    """The RPC endpoint: one SQL query, and what the server side saw."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def lookup(self, ctxt: Any, caller: str) -> dict[str, Any]:
        from opentelemetry import baggage, trace
        from sqlalchemy import text

        with self.engine.connect() as conn:
            row = conn.execute(text("SELECT :caller AS caller"), {"caller": caller}).one()
        sc = trace.get_current_span().get_span_context()
        return {"caller": row.caller, "span_id": f"{sc.span_id:016x}",
                "baggage": dict(baggage.get_all()),
                "ctxt_keys": sorted(ctxt)}  # trace keys are stripped before us


_CLIENT: list[Any] = []
_LOCK = threading.Lock()


def rpc_leg(conf: Any) -> str:
    """Call the conductor (one transport per process, built on first use)."""
    import oslo_messaging as om

    from tests.services import RABBIT_URL

    with _LOCK:
        if not _CLIENT:
            register_messaging_opts(conf)
            transport = om.get_rpc_transport(conf, url=RABBIT_URL)
            target = om.Target(topic=os.environ["EDGE_RPC_TOPIC"],
                               exchange=os.environ["EDGE_RPC_EXCHANGE"])
            _CLIENT.append(om.get_rpc_client(transport, target, timeout=RPC_TIMEOUT))
    caller = conf.profiler.service_name or os.environ.get("EDGE_SERVICE", str(os.getpid()))
    return json.dumps(_CLIENT[0].call({}, "lookup", caller=caller))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--otlp-port", type=int, required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--exchange", required=True)
    p.add_argument("--ready-file", required=True)
    p.add_argument("--max-seconds", type=int, default=60)
    args = p.parse_args(argv)

    import oslo_messaging as om
    import sqlalchemy

    import os_trace_plugins
    from tests.services import RABBIT_URL

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGALRM, lambda *a: stop.set())
    signal.alarm(args.max_seconds)
    conf = build_conf(args.otlp_port)
    if not os_trace_plugins.setup(conf, service="conductor", host="127.0.0.1"):
        print("tracing did not start", file=sys.stderr)
        return 3
    engine = sqlalchemy.create_engine("sqlite://")
    transport = om.get_rpc_transport(conf, url=RABBIT_URL)
    target = om.Target(topic=args.topic, server="conductor", exchange=args.exchange)
    server = om.get_rpc_server(transport, target, [Conductor(engine)], executor="threading")
    server.start()
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("READY")
    os.replace(tmp, args.ready_file)
    while not stop.wait(0.2):
        pass
    try:
        server.stop()
    finally:
        os_trace_plugins.shutdown()  # flushes the batch processor to the receiver
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # skip futurist's idle-worker wait and the driver's slow teardown


if __name__ == "__main__":
    sys.exit(main())
