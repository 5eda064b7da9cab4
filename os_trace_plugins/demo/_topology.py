"""Building the demo's services, shared by the threads mode and the child processes.

Each ``start_*`` function returns a :class:`Running` whose ``stop()`` stops
the servers and releases what they hold.  ``demo_conf`` is the configuration
every demo service runs with: tracing on, the demo's store, the demo's HMAC
key, SQL statements recorded only for requests that ask (signed ``sql``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import oslo_messaging as messaging
from oslo_config import cfg

from os_trace_plugins import opts
from os_trace_plugins.demo import _services as services

__all__ = ["Running", "demo_conf", "transports", "start_conductor", "start_worker",
           "start_listener", "api_client"]


@dataclass
class Running:
    """Servers (and anything else) to stop, in order."""

    stoppers: list[Callable[[], Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def stop(self) -> None:
        for fn in self.stoppers:
            try:
                fn()
            except Exception:  # a demo teardown must not hide the demo's result
                pass
        self.stoppers.clear()


def demo_conf(store: str, key: str, service_name: str | None = None) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf(args=[], project="os-trace-demo", default_config_files=[], use_env=False)
    for name, value in {"enabled": True, "connection_string": f"sqlite:///{store}",
                        "hmac_keys": key, "trace_sqlalchemy": False,
                        "sql_trace_on_request": True, "sampling_rate": 1.0}.items():
        conf.set_override(name, value, group="profiler")
    if service_name:
        conf.set_override("service_name", service_name, group="profiler")
    _register_builtin_tracing_opts(conf)
    return conf


def _register_builtin_tracing_opts(conf: cfg.ConfigOpts) -> None:
    """oslo.messaging 18.3 registers ``[oslo_messaging_tracing]`` and
    ``[oslo_messaging_metrics]`` on the global ``cfg.CONF`` only, and its RPC
    client reads them from the transport's conf: a transport on any other
    ConfigOpts fails on its first call.  A service avoids that by registering
    the groups on its own conf, as here (tracing left off: os_trace_plugins
    does the tracing)."""
    import importlib

    for module, attr, group in (
            ("oslo_messaging._tracing.client", "oslo_messaging_tracing",
             "oslo_messaging_tracing"),
            ("oslo_messaging._metrics.client", "oslo_messaging_metrics",
             "oslo_messaging_metrics")):
        try:
            group_opts = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):  # another oslo.messaging version
            continue
        try:
            conf.register_opts(group_opts, group=group)
        except cfg.DuplicateOptError:
            pass


def transports(conf: cfg.ConfigOpts, url: str, suffix: str = "") -> tuple[Any, Any]:
    """(RPC transport, notification transport) for ``url``.

    With ``fake://`` both ends of a notification must share one transport
    object (the fake driver's queues live in the object), so the caller
    passes the same pair to every service of the process.
    """
    if suffix and url.startswith(("rabbit:", "amqp:", "kombu:")):
        _auto_delete_queues(conf, suffix)
    return (messaging.get_rpc_transport(conf, url=url),
            messaging.get_notification_transport(conf, url=url))


def _auto_delete_queues(conf: cfg.ConfigOpts, suffix: str) -> None:
    """A run's own exchange, auto-deleted with its queues: nothing is left on a
    shared broker, and nothing of another application's is touched."""
    try:
        from oslo_messaging import transport as om_transport
        from oslo_messaging._drivers import amqp
        conf.register_opts(om_transport._transport_opts)
        conf.set_override("control_exchange", f"os_trace_demo_{suffix}")
        conf.register_opts(amqp.amqp_opts, group="oslo_messaging_rabbit")
        conf.set_override("amqp_auto_delete", True, group="oslo_messaging_rabbit")
    except (ImportError, AttributeError, cfg.Error):  # another oslo.messaging layout
        pass


def _stop_server(srv: messaging.MessageHandlingServer) -> None:
    srv.stop()
    srv.wait()


def start_conductor(conf: cfg.ConfigOpts, rpc: Any, notif: Any, topics: services.Topics,
                    db_url: str) -> Running:
    run = Running()
    db = services.Database(db_url, topics.table)
    driver, problem = services.wrap_driver(services.FakeHypervisorDriver())
    if problem:
        run.notes.append(problem)
    worker = messaging.get_rpc_client(
        rpc, messaging.Target(topic=topics.worker, namespace=services.WORKER_NS,
                              version="1.0"),
        serializer=services.ContextSerializer())
    notifier = messaging.Notifier(notif, publisher_id="demo-conductor.compute-1",
                                  driver="messaging", topics=[topics.notifications],
                                  serializer=services.ContextSerializer())
    endpoint = services.Conductor(db, driver, worker, notifier)
    srv = services.start_rpc_server(rpc, topics.conductor, endpoint)
    run.stoppers += [lambda: _stop_server(srv), db.drop]
    return run


def start_worker(rpc: Any, topics: services.Topics,
                 report: Callable[[str], Any] | None = None,
                 ) -> tuple[Running, services.Worker]:
    endpoint = services.Worker(report)
    srv = services.start_rpc_server(rpc, topics.worker, endpoint)
    return Running([lambda: _stop_server(srv)]), endpoint


def start_listener(notif: Any, topics: services.Topics,
                   report: Callable[[str], Any] | None = None,
                   ) -> tuple[Running, services.Listener]:
    endpoint = services.Listener(report)
    srv = services.start_listener(notif, topics.notifications, endpoint)
    return Running([lambda: _stop_server(srv)]), endpoint


def api_client(rpc: Any, topics: services.Topics, timeout: int = 20) -> Any:
    return messaging.get_rpc_client(
        rpc, messaging.Target(topic=topics.conductor, namespace=services.CONDUCTOR_NS,
                              version="1.0"),
        serializer=services.ContextSerializer(), timeout=timeout)
