"""The configured sampler decides, end to end on fake://: unsampled traces, dropped roots.

With the live sampler (what ``setup()`` installs), a trace the edge did not
sample must stay one unsampled trace across hops without any span, and a
message without any trace must be decided once, by whoever starts it, so a
``sampling_rate`` keeps whole traces or nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import oslo_messaging as om
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from os_trace_plugins._switches import SWITCHES
from tests.functional.rpc_env import Recorder, RPCTestCase, StrictContext, StrictSerializer


class WireSpy:
    """Records the context dicts the transport puts on the wire."""

    def __init__(self, transport: Any) -> None:
        self.sent: list[dict[str, Any]] = []
        driver = transport._driver
        original = driver.send

        def send(target: Any, ctxt: Any, message: Any, *args: Any, **kwargs: Any) -> Any:
            self.sent.append(dict(ctxt))
            return original(target, ctxt, message, *args, **kwargs)

        driver.send = send


class Listener:
    def __init__(self) -> None:
        self.got: list[tuple[Any, trace.SpanContext]] = []
        self.event = threading.Event()

    def info(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any,
             metadata: Any) -> None:
        self.got.append((ctxt, trace.get_current_span().get_span_context()))
        self.event.set()


class UnsampledRPCTest(RPCTestCase):
    use_live_sampler = True

    def wait_for(self, pred: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                self.fail("timed out")
            time.sleep(0.01)

    def test_unsampled_trace_crosses_two_hops_without_spans(self) -> None:
        SWITCHES.set("sampling_rate", 0.0)
        spy = WireSpy(self.transport)
        inner_topic = self.topic + "-inner"
        rec = Recorder()
        self.start_server([rec], topic=inner_topic, server="in",
                          serializer=StrictSerializer())
        inner = self.client(topic=inner_topic, serializer=StrictSerializer())

        class Outer:
            def relay(self, ctxt: Any) -> Any:
                return inner.call(ctxt, "echo", value="x")

        self.start_server([Outer()], serializer=StrictSerializer())
        with self.tracer.start_as_current_span("api") as api:
            sc = api.get_span_context()
            self.assertFalse(sc.trace_flags.sampled)
            result = self.client(serializer=StrictSerializer()).call(
                StrictContext(request_id="req-1"), "relay")
        self.assertEqual(result, "x")
        self.assertEqual(self.spans(), [])
        seen = rec.seen[0]
        self.assertEqual(seen["trace_id"], sc.trace_id)
        self.assertTrue(seen["valid"])
        self.assertFalse(seen["sampled"])
        self.assertIsInstance(seen["ctxt"], StrictContext)  # the key never reached it
        # both hops carried the trace on, unsampled, and no span was built:
        # the sampler drops every child, so each send carries the current
        # span context as it is (the first hop: the API span's own id)
        calls = [c["traceparent"] for c in spy.sent if "traceparent" in c]
        self.assertEqual(len(calls), 2, spy.sent)
        for header in calls:
            self.assertEqual(header[3:35], f"{sc.trace_id:032x}")
            self.assertEqual(header[53:], f"{sc.trace_flags:02x}")
        self.assertEqual(calls[0][36:52], f"{sc.span_id:016x}")
        self.assertEqual(calls[1], calls[0])  # the server attached the remote parent

    def test_dropped_root_is_decided_once_by_the_caller(self) -> None:
        SWITCHES.set("sampling_rate", 0.0)
        spy = WireSpy(self.transport)
        rec = Recorder()
        self.start_server([rec])
        for _ in range(3):
            self.client().call({}, "echo", value=1)
        self.assertEqual(self.spans(), [])
        headers = [c["traceparent"] for c in spy.sent]
        self.assertEqual(len(set(headers)), 3)  # a fresh trace per call
        for header, seen in zip(headers, rec.seen, strict=True):
            self.assertFalse(int(header[-2:], 16) & 1, header)
            self.assertTrue(seen["valid"])
            self.assertFalse(seen["sampled"])
            self.assertEqual(f"{seen['trace_id']:032x}", header[3:35])

    def test_rate_keeps_whole_traces_only(self) -> None:
        SWITCHES.set("sampling_rate", 0.5)
        rec = Recorder()
        self.start_server([rec])
        client = self.client()
        for i in range(60):
            client.call({}, "echo", value=i)
        callers = {s.context.trace_id: s for s in self.by_kind(SpanKind.CLIENT)}
        servers = {s.context.trace_id: s for s in self.by_kind(SpanKind.SERVER)}
        self.assertEqual(set(callers), set(servers))
        self.assertTrue(5 < len(callers) < 55, len(callers))
        for trace_id, server in servers.items():
            self.assertChildOf(server, callers[trace_id])
            self.assertIsNone(callers[trace_id].parent)
        sampled_seen = {s["trace_id"] for s in rec.seen if s["sampled"]}
        self.assertEqual(sampled_seen, set(servers))
        self.assertEqual(len(rec.seen), 60)

    def test_message_without_carrier_is_a_root_the_sampler_decides(self) -> None:
        rec = Recorder()
        self.start_server([rec])
        target = om.Target(topic=self.topic)
        driver = self.transport._driver
        SWITCHES.set("sampling_rate", 0.0)
        driver.send(target, {"request_id": "r"}, {"method": "echo", "args": {}},
                    wait_for_reply=True, timeout=5)
        self.assertEqual(self.spans(), [])
        self.assertTrue(rec.seen[0]["valid"])
        self.assertFalse(rec.seen[0]["sampled"])
        self.assertEqual(rec.seen[0]["ctxt"], {"request_id": "r"})
        SWITCHES.set("sampling_rate", 1.0)
        driver.send(target, {"request_id": "r"}, {"method": "echo", "args": {}},
                    wait_for_reply=True, timeout=5)
        server = self.span("echo process")
        self.assertIsNone(server.parent)
        self.assertEqual(server.kind, SpanKind.SERVER)
        self.assertEqual(rec.seen[1]["trace_id"], server.context.trace_id)
        self.assertEqual(server.attributes["rpc.method"], "echo")

    def test_unsampled_notification(self) -> None:
        SWITCHES.set("sampling_rate", 0.0)
        listener = Listener()
        self.start_listener([listener], serializer=StrictSerializer())
        notifier = om.Notifier(self.transport, publisher_id="compute.host1",
                               driver="messaging", topics=[self.topic],
                               serializer=StrictSerializer())
        with self.tracer.start_as_current_span("api") as api:
            notifier.info(StrictContext(request_id="req-2"), "compute.x.end", {"id": 1})
        self.assertTrue(listener.event.wait(5))
        ctxt, sc = listener.got[0]
        self.assertIsInstance(ctxt, StrictContext)
        self.assertEqual(sc.trace_id, api.get_span_context().trace_id)
        self.assertFalse(sc.trace_flags.sampled)
        self.assertEqual(self.spans(), [])
