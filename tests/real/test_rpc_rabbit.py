"""RabbitMQ, caller and servers in separate processes: the trace crosses processes.

Three child processes (servers ``a`` and ``b`` on one topic, ``a`` also a
notification listener; ``plain`` without os_trace_plugins, only oslo.messaging's
built-in tracing) export their spans as JSON lines to a file each; the
test process is the caller with the in-memory exporter.  Parent/child links
are asserted across the process boundary.  Children are bounded: they exit
when their stdin closes or after ``LIFETIME`` seconds, and are killed in
tearDownClass if still alive.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from typing import Any

import oslo_messaging as om
from opentelemetry.trace import SpanKind, StatusCode
from oslo_context import context as oslo_context

from tests.functional.rpc_env import ContextSerializer, RPCTestCase
from tests.services import RABBIT_URL, require_service

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIFETIME = 90


class Boom(Exception):
    """Raised by the child; not importable by the caller's allowed_remote_exmods."""


class RabbitRPCTest(RPCTestCase):
    url = RABBIT_URL
    children: dict[str, tuple[subprocess.Popen[str], str]] = {}

    @classmethod
    def setUpClass(cls) -> None:
        require_service("rabbitmq")
        cls.topic_base = f"os-trace-rpc-{uuid.uuid4().hex[:8]}"
        cls.outdir = f"/tmp/{cls.topic_base}"
        os.makedirs(cls.outdir, exist_ok=True)
        cls.children = {}
        for name in ("a", "b", "plain"):
            out = os.path.join(cls.outdir, f"{name}.jsonl")
            code = "from tests.real import test_rpc_rabbit as m; m.child()"
            proc = subprocess.Popen(
                [sys.executable, "-W", "ignore", "-c", code, cls.topic_base, name, out],
                cwd=HERE, env={**os.environ, "PYTHONPATH": HERE}, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            cls.children[name] = (proc, out)
        for name, (proc, _) in cls.children.items():
            line = proc.stdout.readline() if proc.stdout else ""
            if line.strip() != "READY":
                cls.tearDownClass()
                raise RuntimeError(f"child {name} did not start: {line!r}")

    @classmethod
    def tearDownClass(cls) -> None:
        for proc, _ in cls.children.values():
            try:
                if proc.stdin:
                    proc.stdin.close()
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        shutil.rmtree(getattr(cls, "outdir", "/nonexistent"), ignore_errors=True)

    def setUp(self) -> None:
        require_service("rabbitmq")
        super().setUp()
        self.topic = self.topic_base

    def child_spans(self, name: str, want: Any, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Spans of child ``name`` once ``want(spans)`` holds."""
        out = self.children[name][1]
        deadline = time.monotonic() + timeout
        while True:
            spans = []
            if os.path.exists(out):
                with open(out, encoding="utf-8") as f:
                    spans = [json.loads(line) for line in f if line.endswith("\n")]
            if want(spans) or time.monotonic() > deadline:
                return spans
            time.sleep(0.05)

    def find(self, name: str, span_name: str, trace_id: int) -> dict[str, Any]:
        def match(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [s for s in spans if s["name"] == span_name and s["trace_id"] == trace_id]
        found = match(self.child_spans(name, match))
        self.assertEqual(len(found), 1, f"{span_name} in child {name}: {found}")
        return found[0]

    def test_call_across_processes(self) -> None:
        with self.tracer.start_as_current_span("api"):
            self.assertEqual(self.client(server="a").call({"request_id": "req-r"}, "echo",
                                                          value=4), 4)
        caller = self.span("echo call")
        server = self.find("a", "echo process", caller.context.trace_id)
        self.assertEqual(server["parent"], caller.context.span_id)
        self.assertEqual(server["kind"], "SERVER")
        self.assertEqual(server["attributes"]["messaging.system"], "rabbitmq")
        self.assertEqual(server["attributes"]["openstack.request_id"], "req-r")
        self.assertEqual(caller.attributes["messaging.system"], "rabbitmq")
        self.assertFalse(server["ctxt_had_keys"])

    def test_remote_error_recorded(self) -> None:
        with self.assertRaises(om.RemoteError):
            self.client(server="a").call({}, "boom")
        caller = self.span("boom call")
        self.assertEqual(caller.status.status_code, StatusCode.ERROR)
        self.assertEqual(caller.attributes["error.type"], "Boom")
        self.assertEqual(caller.attributes["rpc.remote_exception.type"], "Boom")
        server = self.find("a", "boom process", caller.context.trace_id)
        self.assertEqual(server["status"], "ERROR")
        self.assertEqual(server["attributes"]["error.type"], "tests.real.test_rpc_rabbit.Boom")

    def test_cast_across_processes(self) -> None:
        with self.tracer.start_as_current_span("api"):
            self.client(server="b").cast({}, "echo", value=1)
        producer = self.span("echo cast")
        consumer = self.find("b", "echo process", producer.context.trace_id)
        self.assertEqual(consumer["parent"], producer.context.span_id)
        self.assertEqual(consumer["kind"], "CONSUMER")

    def test_fanout_to_two_processes(self) -> None:
        with self.tracer.start_as_current_span("api"):
            self.client(fanout=True).cast({}, "echo")
        producer = self.span("echo fanout")
        self.assertEqual(producer.kind, SpanKind.PRODUCER)
        for name in ("a", "b"):
            consumer = self.find(name, "echo process", producer.context.trace_id)
            self.assertEqual(consumer["parent"], producer.context.span_id)

    def test_peer_with_only_builtin_tracing(self) -> None:
        # "plain": no os_trace_plugins, oslo.context serializer, oslo.messaging's
        # own [oslo_messaging_tracing] on: it keeps working and joins our trace
        ctx = oslo_context.RequestContext(request_id="req-plain")
        with self.tracer.start_as_current_span("api"):
            got = self.client(topic=self.topic + "-plain", server="plain",
                              serializer=ContextSerializer()).call(ctx, "whoami")
        self.assertEqual(got, "req-plain")
        caller = self.span("whoami call")
        theirs = self.find("plain", "whoami receive", caller.context.trace_id)
        self.assertEqual(theirs["parent"], caller.context.span_id)

    def test_notification_to_listener_process(self) -> None:
        notifier = om.Notifier(self.transport, publisher_id="compute.h1", driver="messaging",
                               topics=[self.topic + "-notif"])
        with self.tracer.start_as_current_span("api"):
            notifier.info({}, "compute.instance.update", {"x": 1})
        producer = self.span("compute.instance.update publish")
        consumer = self.find("a", "compute.instance.update process",
                             producer.context.trace_id)
        self.assertEqual(consumer["parent"], producer.context.span_id)
        self.assertEqual(consumer["attributes"]["oslo_messaging.notification.publisher_id"],
                         "compute.h1")


def child() -> None:
    """A server process: RPC server (+ listener for ``a``), spans to a JSON-lines file."""
    import select
    import threading

    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    from os_trace_plugins.rpc._hook import RPCHook
    from os_trace_plugins.rpc._notify_hook import NotificationHook
    from tests.base import make_conf
    from tests.functional.rpc_env import register_messaging_opts

    topic, name, out = sys.argv[1:4]
    lock = threading.Lock()
    saw_keys: list[bool] = []

    class FileExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            with lock, open(out, "a", encoding="utf-8") as f:
                for s in spans:
                    assert isinstance(s, ReadableSpan) and s.context is not None
                    f.write(json.dumps({
                        "name": s.name, "kind": s.kind.name, "trace_id": s.context.trace_id,
                        "span_id": s.context.span_id,
                        "parent": s.parent.span_id if s.parent else None,
                        "status": s.status.status_code.name,
                        "attributes": dict(s.attributes or {}),
                        "ctxt_had_keys": bool(saw_keys and saw_keys[-1])}) + "\n")
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
    trace.set_tracer_provider(provider)
    conf = make_conf()
    register_messaging_opts(conf)
    hooks = [RPCHook(), NotificationHook()]
    for hook in hooks:
        hook.instrument(conf, provider)

    class Endpoint:
        def echo(self, ctxt: Any, value: Any = None) -> Any:
            saw_keys.append(bool({"traceparent", "trace_info"} & set(ctxt)))
            return value

        def boom(self, ctxt: Any) -> None:
            raise Boom("remote failure")

    class Listener:
        def info(self, *args: Any) -> None:
            pass

    class Plain:
        def whoami(self, ctxt: Any) -> str:
            return str(ctxt.request_id)  # a RequestContext rebuilt by from_dict()

    transport = om.get_rpc_transport(conf, url=RABBIT_URL)
    if name == "plain":  # no os_trace_plugins at all, only the built-in tracing
        for hook in hooks:
            hook.uninstrument()
        conf.set_override("tracing_enabled", True, group="oslo_messaging_tracing")
        srv = om.get_rpc_server(transport, om.Target(topic=topic + "-plain", server=name),
                                [Plain()], serializer=ContextSerializer())
        srv.start()
        print("READY", flush=True)
        select.select([sys.stdin], [], [], LIFETIME)
        srv.stop()
        os._exit(0)
    servers = [om.get_rpc_server(transport, om.Target(topic=topic, server=name),
                                 [Endpoint()])]
    if name == "a":
        servers.append(om.get_notification_listener(
            transport, [om.Target(topic=topic + "-notif")], [Listener()]))
    for srv in servers:
        srv.start()
    print("READY", flush=True)
    select.select([sys.stdin], [], [], LIFETIME)  # until the test closes stdin
    for srv in servers:
        srv.stop()  # spans are exported synchronously: nothing left to flush
    for hook in hooks:
        hook.uninstrument()
    os._exit(0)  # skip futurist's idle-worker wait and the driver's slow teardown
