"""In-process oslo.messaging for the RPC tests: fake:// transport, servers, serializers.

``RPCTestCase`` instruments the process's shared RPC and notification hooks
(uninstrumented at cleanup), builds a ``fake://`` transport on ``self.conf`` (with
oslo.messaging's metrics and tracing groups registered there, which 18.3
reads from whatever ConfigOpts the transport has) and starts servers and
listeners that are always stopped by the test.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import oslo_messaging as om
from opentelemetry import trace
from oslo_config import cfg
from oslo_context import context as oslo_context
from oslo_messaging import server as om_server
from oslo_messaging._metrics import client as om_metrics

try:  # oslo.messaging 18 and later: the built-in [oslo_messaging_tracing]
    from oslo_messaging._tracing import client as om_tracing
except ImportError:  # the oldest supported release (14.0) has none
    om_tracing = None

from os_trace_plugins._hooks import shared
from os_trace_plugins.rpc._hook import RPCHook
from os_trace_plugins.rpc._notify_hook import NotificationHook
from tests.base import TestCase

#: whether this oslo.messaging has its own tracing (18.x); the coexistence tests need it
HAS_BUILTIN_TRACING = om_tracing is not None
NO_BUILTIN_TRACING = "oslo.messaging before 18 has no built-in tracing to coexist with"

__all__ = ["HAS_BUILTIN_TRACING", "NO_BUILTIN_TRACING", "RPCTestCase", "ContextSerializer",
           "StrictSerializer", "StrictContext", "Recorder", "register_messaging_opts",
           "reset_builtin_tracer"]


def register_messaging_opts(conf: cfg.ConfigOpts) -> None:
    """oslo.messaging 18.3 registers these on the global CONF only."""
    groups = [(om_metrics.oslo_messaging_metrics, "oslo_messaging_metrics")]
    if om_tracing is not None:
        groups.append((om_tracing.oslo_messaging_tracing, "oslo_messaging_tracing"))
    for opts, group in groups:
        try:
            conf.register_opts(opts, group=group)
        except cfg.DuplicateOptError:
            pass


def reset_builtin_tracer() -> None:
    """The built-in tracing caches its tracer (bound to one provider) globally."""
    if om_tracing is not None:
        om_tracing._TRACER = None


class ContextSerializer(om.Serializer):
    """What every OpenStack service has: ``to_dict()`` / ``from_dict()``."""

    def serialize_entity(self, ctxt: Any, entity: Any) -> Any:
        return entity

    def deserialize_entity(self, ctxt: Any, entity: Any) -> Any:
        return entity

    def serialize_context(self, ctxt: Any) -> dict[str, Any]:
        return ctxt.to_dict()

    def deserialize_context(self, ctxt: dict[str, Any]) -> Any:
        return oslo_context.RequestContext.from_dict(ctxt)


class StrictContext:
    """A context class that refuses unknown keys (``MyContext(**ctxt)``)."""

    def __init__(self, request_id: str | None = None, user_id: str | None = None,
                 project_id: str | None = None) -> None:
        self.request_id, self.user_id, self.project_id = request_id, user_id, project_id

    def redacted_copy(self) -> StrictContext:  # what Notifier asks of a context
        return StrictContext(**self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "user_id": self.user_id,
                "project_id": self.project_id}


class StrictSerializer(ContextSerializer):
    def deserialize_context(self, ctxt: dict[str, Any]) -> Any:
        return StrictContext(**ctxt)


class Recorder:
    """An endpoint that records what it saw and can raise or call onwards."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.done = threading.Event()

    def _note(self, ctxt: Any, **extra: Any) -> dict[str, Any]:
        sc = trace.get_current_span().get_span_context()
        entry = {"ctxt": ctxt, "trace_id": sc.trace_id, "span_id": sc.span_id,
                 "sampled": sc.trace_flags.sampled, "valid": sc.is_valid,
                 "thread": threading.get_ident(), **extra}
        with self.lock:
            self.seen.append(entry)
        self.done.set()
        return entry

    def echo(self, ctxt: Any, value: Any = None) -> Any:
        self._note(ctxt, value=value)
        return value

    def fail(self, ctxt: Any) -> None:
        raise ValueError("endpoint failed")

    @om.expected_exceptions(KeyError)
    def expected(self, ctxt: Any) -> None:
        raise KeyError("not found")


class RPCTestCase(TestCase):
    """TestCase with both hooks instrumented and a fake:// transport."""

    url = "fake://"

    def setUp(self) -> None:
        super().setUp()
        register_messaging_opts(self.conf)
        self.conf.register_opts(om_server._pool_opts)
        reset_builtin_tracer()
        self.addCleanup(reset_builtin_tracer)
        self.rpc_hook = shared(RPCHook)
        self.rpc_hook.instrument(self.conf, self.provider)
        self.addCleanup(self.rpc_hook.uninstrument)
        self.notify_hook = shared(NotificationHook)
        self.notify_hook.instrument(self.conf, self.provider)
        self.addCleanup(self.notify_hook.uninstrument)
        self.transport = om.get_rpc_transport(self.conf, url=self.url)
        self.addCleanup(self.transport.cleanup)
        self.topic = f"t-{uuid.uuid4().hex[:8]}"

    def start_server(self, endpoints: list[Any], server: str = "s1", topic: str | None = None,
                     serializer: Any = None, executor: str = "threading") -> Any:
        target = om.Target(topic=topic or self.topic, server=server)
        srv = om.get_rpc_server(self.transport, target, endpoints, executor=executor,
                                serializer=serializer)
        srv.start()
        self.addCleanup(self._stop, srv)
        return srv

    def start_listener(self, endpoints: list[Any], topic: str | None = None,
                       batch: int = 0, serializer: Any = None) -> Any:
        targets = [om.Target(topic=topic or self.topic)]
        if batch:
            srv = om.get_batch_notification_listener(
                self.transport, targets, endpoints, executor="threading",
                serializer=serializer, batch_size=batch, batch_timeout=2)
        else:
            srv = om.get_notification_listener(
                self.transport, targets, endpoints, executor="threading",
                serializer=serializer)
        srv.start()
        self.addCleanup(self._stop, srv)
        return srv

    @staticmethod
    def _stop(srv: Any) -> None:
        # stop() joins the listener thread; wait() would also block ~1 s per
        # server on futurist's idle-worker timeout, so the pool is shut down
        # without waiting (its idle threads exit on their own).
        srv.stop()
        srv._work_executor.shutdown(wait=False)
        srv.listener.cleanup()

    def client(self, serializer: Any = None, **target: Any) -> Any:
        target.setdefault("topic", self.topic)
        return om.get_rpc_client(self.transport, om.Target(**target), serializer=serializer)

    def by_kind(self, kind: trace.SpanKind) -> list[Any]:
        return [s for s in self.spans() if s.kind == kind]
