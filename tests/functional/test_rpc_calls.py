"""RPC call, cast and fanout through oslo.messaging's fake:// transport.

Asserts on finished spans: kinds, parent/child links, attributes, errors, and
that the service's own serializer never sees a trace key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import oslo_messaging as om
from opentelemetry.trace import SpanKind, StatusCode
from oslo_context import context as oslo_context

from os_trace_plugins._switches import SWITCHES
from tests.functional.rpc_env import (
    ContextSerializer,
    Recorder,
    RPCTestCase,
    StrictContext,
    StrictSerializer,
)

TRACE_KEYS = {"traceparent", "tracestate", "baggage", "trace_info"}


class RPCCallTest(RPCTestCase):

    def wait_for(self, pred: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                self.fail(f"timed out; spans: {[s.name for s in self.spans()]}")
            time.sleep(0.01)

    def test_call_client_and_server_spans(self) -> None:
        rec = Recorder()
        self.start_server([rec], serializer=ContextSerializer())
        client = self.client(serializer=ContextSerializer())
        ctx = oslo_context.RequestContext(user_id="u1", project_id="p1",
                                          global_request_id="req-global")
        with self.tracer.start_as_current_span("api") as api:
            self.assertEqual(client.call(ctx, "echo", value=7), 7)
        caller = self.span("echo call")
        server = self.span("echo process")
        self.assertEqual(caller.kind, SpanKind.CLIENT)
        self.assertEqual(server.kind, SpanKind.SERVER)
        self.assertChildOf(caller, self.span("api"))
        self.assertChildOf(server, caller)
        self.assertEqual(api.get_span_context().trace_id, rec.seen[0]["trace_id"])
        self.assertEqual(rec.seen[0]["span_id"], server.context.span_id)
        for span in (caller, server):
            attrs = span.attributes or {}
            self.assertEqual(attrs["rpc.method"], "echo")
            self.assertEqual(attrs["messaging.system"], "oslo.messaging.fake")
            self.assertEqual(attrs["openstack.request_id"], ctx.request_id)
            self.assertEqual(attrs["openstack.global_request_id"], "req-global")
            self.assertEqual(attrs["openstack.project_id"], "p1")
            self.assertEqual(attrs["openstack.user_id"], "u1")
        self.assertEqual(caller.attributes["messaging.destination.name"], self.topic)
        self.assertEqual(caller.attributes["messaging.operation.name"], "call")
        self.assertEqual(server.attributes["messaging.operation.type"], "process")
        # the service got its own context back, without our keys
        got = rec.seen[0]["ctxt"]
        self.assertIsInstance(got, oslo_context.RequestContext)
        self.assertEqual(got.request_id, ctx.request_id)

    def test_strict_context_never_sees_trace_keys(self) -> None:
        rec = Recorder()
        self.start_server([rec], serializer=StrictSerializer())
        client = self.client(serializer=StrictSerializer())
        with self.tracer.start_as_current_span("api"):
            client.call(StrictContext(request_id="req-1"), "echo")
        self.assertIsInstance(rec.seen[0]["ctxt"], StrictContext)
        self.assertChildOf(self.span("echo process"), self.span("echo call"))

    def test_strict_context_with_switch_off(self) -> None:
        # trace keys written by someone else are still removed with the hook off
        rec = Recorder()
        self.start_server([rec], serializer=StrictSerializer())
        SWITCHES.set("trace_rpc", False)
        target = om.Target(topic=self.topic)
        self.transport._send(target, {"request_id": "r", "traceparent": "00-" + "1" * 32
                                      + "-" + "2" * 16 + "-01", "baggage": "a=b"},
                             {"method": "echo", "args": {}}, wait_for_reply=True, timeout=5)
        self.assertIsInstance(rec.seen[0]["ctxt"], StrictContext)
        self.assertEqual(self.spans(), [])

    def test_noop_serializer_dict_is_not_mutated(self) -> None:
        rec = Recorder()
        self.start_server([rec])
        client = self.client()
        mine = {"request_id": "req-1"}
        with self.tracer.start_as_current_span("api"):
            client.call(mine, "echo")
            client.cast(mine, "echo")
        self.assertEqual(mine, {"request_id": "req-1"})
        self.wait_for(lambda: len(self.by_kind(SpanKind.CONSUMER)) == 1)
        for seen in rec.seen:
            self.assertEqual(set(seen["ctxt"]) & TRACE_KEYS, set())

    def test_cast_producer_consumer(self) -> None:
        rec = Recorder()
        self.start_server([rec])
        with self.tracer.start_as_current_span("api"):
            self.client(server="s1").cast({}, "echo", value=1)
        self.wait_for(lambda: len(self.by_kind(SpanKind.CONSUMER)) == 1)
        producer = self.span("echo cast")
        consumer = self.span("echo process")
        self.assertEqual(producer.kind, SpanKind.PRODUCER)
        self.assertEqual(consumer.kind, SpanKind.CONSUMER)
        self.assertChildOf(consumer, producer)
        self.assertEqual(producer.attributes["oslo_messaging.target.server"], "s1")
        self.assertEqual(consumer.attributes["messaging.operation.name"], "cast")

    def test_fanout_reaches_both_servers_in_one_trace(self) -> None:
        rec1, rec2 = Recorder(), Recorder()
        self.start_server([rec1], server="a")
        self.start_server([rec2], server="b")
        with self.tracer.start_as_current_span("api"):
            self.client(fanout=True).cast({}, "echo")
        self.wait_for(lambda: len(self.by_kind(SpanKind.CONSUMER)) == 2)
        producer = self.span("echo fanout")
        self.assertTrue(producer.attributes["oslo_messaging.target.fanout"])
        for consumer in self.by_kind(SpanKind.CONSUMER):
            self.assertChildOf(consumer, producer)
        self.assertOneTrace(self.spans())

    def test_endpoint_error_recorded_on_both_sides(self) -> None:
        self.start_server([Recorder()])
        with self.assertRaises(ValueError):
            self.client().call({}, "fail")
        for name in ("fail call", "fail process"):
            span = self.span(name)
            self.assertEqual(span.status.status_code, StatusCode.ERROR)
            self.assertEqual(span.attributes["error.type"], "ValueError")
            self.assertEqual(span.events[0].name, "exception")

    def test_expected_exception_is_not_an_error(self) -> None:
        self.start_server([Recorder()])
        with self.assertRaises(KeyError):
            self.client().call({}, "expected")
        server = self.span("expected process")
        self.assertEqual(server.status.status_code, StatusCode.UNSET)
        self.assertNotIn("error.type", server.attributes)
        self.assertEqual(server.attributes["oslo_messaging.expected_exception"], "KeyError")
        self.assertEqual(server.events[0].attributes["exception.type"], "KeyError")

    def test_timeout_recorded_on_client_span(self) -> None:
        with self.assertRaises(om.MessagingTimeout):
            self.client(topic="nobody-listens").prepare(timeout=0.2).call({}, "echo")
        span = self.span("echo call")
        self.assertEqual(span.status.status_code, StatusCode.ERROR)
        self.assertEqual(span.attributes["error.type"],
                         "oslo_messaging.exceptions.MessagingTimeout")

    def test_worker_thread_starts_next_message_clean(self) -> None:
        self.conf.set_override("executor_thread_pool_size", 1)
        rec = Recorder()
        self.start_server([rec])
        client = self.client()
        with self.tracer.start_as_current_span("api"):
            client.call({}, "echo")
        SWITCHES.set("trace_rpc", False)
        client.call({}, "echo")
        first, second = rec.seen
        self.assertEqual(first["thread"], second["thread"])
        self.assertTrue(first["valid"])
        self.assertFalse(second["valid"], "the first message's trace leaked")

    def test_message_without_carrier_starts_a_root(self) -> None:
        rec = Recorder()
        self.start_server([rec])
        target = om.Target(topic=self.topic)
        # a caller without os_trace_plugins: straight to the driver
        self.transport._driver.send(target, {"request_id": "r"},
                                    {"method": "echo", "args": {}}, wait_for_reply=True,
                                    timeout=5)
        server = self.span("echo process")
        self.assertIsNone(server.parent)
        self.assertEqual(rec.seen[0]["ctxt"], {"request_id": "r"})

    def test_nested_call_from_endpoint_stays_in_trace(self) -> None:
        inner_topic = self.topic + "-inner"
        rec = Recorder()
        self.start_server([rec], topic=inner_topic, server="in")
        client = self.client(topic=inner_topic)

        class Outer:
            def relay(self, ctxt: Any) -> Any:
                return client.call(ctxt, "echo", value="x")

        self.start_server([Outer()])
        with self.tracer.start_as_current_span("api"):
            self.assertEqual(self.client().call({}, "relay"), "x")
        self.assertChildOf(self.span("echo call"), self.span("relay process"))
        self.assertChildOf(self.span("echo process"), self.span("echo call"))
        self.assertOneTrace(self.spans())

    def test_baggage_travels(self) -> None:
        rec = Recorder()
        self.start_server([rec])
        token = self.with_baggage("os_trace.sql", "1")
        try:
            with self.tracer.start_as_current_span("api"):
                seen: list[Any] = []

                class Probe:
                    def look(self, ctxt: Any) -> None:
                        from opentelemetry import baggage
                        seen.append(baggage.get_baggage("os_trace.sql"))

                self.start_server([Probe()], topic=self.topic + "-b", server="b")
                self.client(topic=self.topic + "-b").call({}, "look")
        finally:
            from opentelemetry import context
            context.detach(token)  # type: ignore[arg-type]
        self.assertEqual(seen, ["1"])
