"""The demo's OpenStack-shaped services: API, conductor, worker, listener.

* **API** (WSGI, webob): ``POST /servers`` makes an oslo.context request
  context and ``call``\\ s the conductor over oslo.messaging RPC; wrapped in
  :class:`os_trace_plugins.wsgi.TracingMiddleware` when it is installed.
* **conductor** (RPC server): queries its database through SQLAlchemy, calls
  a vendor driver wrapped with :func:`os_trace_plugins.drivers.trace_driver`,
  ``cast``\\ s to the worker and sends an ``instance.create.end`` notification.
* **worker** (RPC server) and **listener** (notification listener).

Nothing here is demo-specific tracing code: the spans come from the hooks
``setup()`` loads, exactly as in a real service.  The contexts travel as
``context.to_dict()``, as every OpenStack service's RequestContextSerializer
does, which is where the RPC hook puts the trace carrier.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import oslo_messaging as messaging
import sqlalchemy as sa
from oslo_context import context as oslo_context

__all__ = ["CONDUCTOR_NS", "WORKER_NS", "EVENT_TYPE", "Topics", "ContextSerializer",
           "Database", "FakeHypervisorDriver", "DriverError", "wrap_driver",
           "Conductor", "Worker", "Listener", "make_api", "start_rpc_server",
           "start_listener"]

LOG = logging.getLogger(__name__)

CONDUCTOR_NS = "demo_conductor"
WORKER_NS = "demo_worker"
EVENT_TYPE = "instance.create.end"


class Topics:
    """Queue names of one demo run (unique, so runs never collide on a broker)."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.conductor = f"os_trace_demo_conductor_{suffix}"
        self.worker = f"os_trace_demo_worker_{suffix}"
        self.notifications = f"os_trace_demo_notifications_{suffix}"
        self.table = f"demo_instances_{suffix}"


class ContextSerializer(messaging.Serializer):  # type: ignore[misc]
    """nova/rpc.py's RequestContextSerializer, minus the entity serializer."""

    def serialize_entity(self, ctxt: Any, entity: Any) -> Any:
        return entity

    def deserialize_entity(self, ctxt: Any, entity: Any) -> Any:
        return entity

    def serialize_context(self, ctxt: Any) -> dict[str, Any]:
        return dict(ctxt.to_dict())

    def deserialize_context(self, ctxt: dict[str, Any]) -> Any:
        return oslo_context.RequestContext.from_dict(ctxt)


class Database:
    """The conductor's database: one table of instances."""

    def __init__(self, url: str, table: str) -> None:
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool
                                       if url.startswith("sqlite") else None)
        meta = sa.MetaData()
        self.instances = sa.Table(
            table, meta,
            sa.Column("id", sa.String(36), primary_key=True),
            sa.Column("name", sa.String(255), nullable=False),
            sa.Column("flavor", sa.String(64), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("host", sa.String(64)))
        self._meta = meta
        meta.create_all(self.engine)

    def drop(self) -> None:
        self._meta.drop_all(self.engine)
        self.engine.dispose()


class DriverError(Exception):
    """The hypervisor refused the instance."""


class FakeHypervisorDriver:
    """A vendor driver: slow-ish calls to a pretend hypervisor."""

    def __init__(self, host: str = "compute-1") -> None:
        self.host = host

    def get_available_resource(self) -> dict[str, int]:
        time.sleep(0.002)
        return {"vcpus": 64, "memory_mb": 262144}

    def spawn(self, instance_id: str, flavor: str) -> str:
        time.sleep(random.uniform(0.005, 0.015))
        if flavor == "huge":
            raise DriverError(f"no hypervisor can fit flavor {flavor!r}")
        return f"{self.host}:{instance_id[:8]}"


def wrap_driver(driver: FakeHypervisorDriver) -> tuple[Any, str | None]:
    """``trace_driver(driver)`` when the drivers package is installed; (obj, problem)."""
    try:
        from os_trace_plugins.drivers import trace_driver
    except ImportError as exc:
        return driver, f"driver tracing unavailable ({exc})"
    return trace_driver(driver, name="FakeHypervisorDriver"), None


class Conductor:
    """The RPC endpoint ``demo_conductor.build_instance``."""

    target = messaging.Target(namespace=CONDUCTOR_NS, version="1.0")

    def __init__(self, db: Database, driver: Any, worker: messaging.RPCClient,
                 notifier: messaging.Notifier) -> None:
        self.db, self.driver, self.worker, self.notifier = db, driver, worker, notifier

    @messaging.expected_exceptions(DriverError)  # type: ignore[misc]
    def build_instance(self, ctxt: Any, name: str, flavor: str) -> dict[str, str]:
        instance_id = str(uuid.uuid4())
        t = self.db.instances
        with self.db.engine.begin() as conn:
            conn.execute(t.insert().values(id=instance_id, name=name, flavor=flavor,
                                           status="BUILD"))
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
        self.driver.get_available_resource()
        try:
            host = self.driver.spawn(instance_id, flavor)
        except DriverError:
            with self.db.engine.begin() as conn:
                conn.execute(t.update().where(t.c.id == instance_id).values(status="ERROR"))
            raise
        with self.db.engine.begin() as conn:
            conn.execute(t.update().where(t.c.id == instance_id).values(
                status="ACTIVE", host=host))
            row = conn.execute(sa.select(t).where(t.c.id == instance_id)).one()
        self.worker.cast(ctxt, "post_build", instance_id=instance_id)
        self.notifier.info(ctxt, EVENT_TYPE, {"instance_id": instance_id, "host": host})
        return {"id": row.id, "name": row.name, "status": row.status, "host": row.host}


class Worker:
    """The RPC endpoint ``demo_worker.post_build`` (reached by a cast)."""

    target = messaging.Target(namespace=WORKER_NS, version="1.0")

    def __init__(self, report: Callable[[str], Any] | None = None) -> None:
        self.done: list[str] = []
        self.report = report

    def post_build(self, ctxt: Any, instance_id: str) -> None:
        time.sleep(0.003)  # configure the console, the metadata...
        self.done.append(instance_id)
        if self.report:
            self.report(instance_id)


class Listener:
    """The notification endpoint: consumes ``instance.create.end``."""

    def __init__(self, report: Callable[[str], Any] | None = None) -> None:
        self.seen: list[str] = []
        self.report = report

    def info(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any,
             metadata: Any) -> None:
        instance_id = str((payload or {}).get("instance_id"))
        self.seen.append(instance_id)
        if self.report:
            self.report(instance_id)
        return None


def make_api(conductor: messaging.RPCClient) -> Any:
    """The API as a WSGI app (``POST /servers``, ``GET /health``)."""
    import webob
    import webob.dec
    import webob.exc

    @webob.dec.wsgify  # type: ignore[misc]
    def app(req: webob.Request) -> webob.Response:
        if req.path == "/health":
            return webob.Response(json_body={"ok": True})
        if req.path != "/servers" or req.method != "POST":
            raise webob.exc.HTTPNotFound()
        req.environ["os_trace.route"] = "/servers"  # what a router would tell
        body = json.loads(req.body or b"{}")
        ctxt = oslo_context.RequestContext(
            project_id="demo-project", user_id="demo-user",
            global_request_id=req.headers.get("X-OpenStack-Request-ID"))
        req.environ["openstack.context"] = ctxt  # as keystonemiddleware's stack does
        try:
            server = conductor.call(ctxt, "build_instance", name=body.get("name", "vm"),
                                    flavor=body.get("flavor", "m1.small"))
        except messaging.MessagingTimeout:
            return webob.Response(status=504, json_body={"error": "conductor timed out"})
        except Exception as exc:  # RemoteError carrying the driver's failure
            return webob.Response(status=500, json_body={"error": str(exc).splitlines()[0]})
        return webob.Response(status=202, json_body={"server": server},
                              headers={"X-OpenStack-Request-ID": ctxt.request_id})

    return app


def start_rpc_server(transport: messaging.Transport, topic: str, endpoint: Any,
                     server: str = "demo") -> messaging.MessageHandlingServer:
    srv = messaging.get_rpc_server(
        transport, messaging.Target(topic=topic, server=server), [endpoint],
        executor="threading", serializer=ContextSerializer())
    srv.start()
    return srv


def start_listener(transport: messaging.Transport, topic: str,
                   endpoint: Any) -> messaging.MessageHandlingServer:
    srv = messaging.get_notification_listener(
        transport, [messaging.Target(topic=topic)], [endpoint], executor="threading",
        serializer=ContextSerializer())
    srv.start()
    return srv
