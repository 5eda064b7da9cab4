"""Notifications through fake://: PRODUCER per send, CONSUMER per notification, batches."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import oslo_messaging as om
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from os_trace_plugins._switches import SWITCHES
from tests.functional.rpc_env import RPCTestCase, StrictContext, StrictSerializer


class Listener:
    def __init__(self) -> None:
        self.got: list[tuple[Any, str, int]] = []
        self.event = threading.Event()

    def info(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any,
             metadata: Any) -> None:
        self.got.append((ctxt, event_type, trace.get_current_span().get_span_context().trace_id))
        self.event.set()


class BatchListener:
    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    def info(self, messages: list[dict[str, Any]]) -> None:
        self.batches.append(messages)


class NotificationTest(RPCTestCase):

    def wait_for(self, pred: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                self.fail(f"timed out; spans: {[s.name for s in self.spans()]}")
            time.sleep(0.01)

    def notifier(self, serializer: Any = None) -> om.Notifier:
        return om.Notifier(self.transport, publisher_id="compute.host1", driver="messaging",
                           topics=[self.topic], serializer=serializer)

    def test_notification_producer_and_consumer(self) -> None:
        listener = Listener()
        self.start_listener([listener], serializer=StrictSerializer())
        with self.tracer.start_as_current_span("api") as api:
            self.notifier(StrictSerializer()).info(
                StrictContext(request_id="req-9"), "compute.instance.create.end", {"id": 1})
        self.wait_for(lambda: len(self.by_kind(SpanKind.CONSUMER)) == 1)
        producer = self.span("compute.instance.create.end publish")
        consumer = self.span("compute.instance.create.end process")
        self.assertEqual(producer.kind, SpanKind.PRODUCER)
        self.assertChildOf(producer, self.span("api"))
        self.assertChildOf(consumer, producer)
        for span in (producer, consumer):
            attrs = span.attributes or {}
            self.assertEqual(attrs["oslo_messaging.notification.event_type"],
                             "compute.instance.create.end")
            self.assertEqual(attrs["oslo_messaging.notification.priority"], "INFO")
            self.assertEqual(attrs["oslo_messaging.notification.publisher_id"],
                             "compute.host1")
            self.assertEqual(attrs["openstack.request_id"], "req-9")
        self.assertEqual(producer.attributes["messaging.destination.name"],
                         f"{self.topic}.info")
        ctxt, _, trace_id = listener.got[0]
        self.assertIsInstance(ctxt, StrictContext)  # keys stripped before the serializer
        self.assertEqual(trace_id, api.get_span_context().trace_id)

    def test_batch_gets_one_span_linking_every_producer(self) -> None:
        listener = BatchListener()
        self.start_listener([listener], batch=3)
        notifier = self.notifier()
        producers = []
        for i in range(3):
            with self.tracer.start_as_current_span(f"api-{i}") as span:
                producers.append(span.get_span_context())
                notifier.info({}, "volume.attach", {"i": i})
        self.wait_for(lambda: bool(self.by_kind(SpanKind.CONSUMER)))
        (batch,) = self.by_kind(SpanKind.CONSUMER)
        self.assertEqual(batch.name, "volume.attach process")
        self.assertIsNone(batch.parent)
        self.assertEqual(batch.attributes["messaging.batch.message_count"], 3)
        publish = {s.context.span_id for s in self.spans() if s.name == "volume.attach publish"}
        self.assertEqual({link.context.span_id for link in batch.links}, publish)
        self.assertEqual({link.context.trace_id for link in batch.links},
                         {p.trace_id for p in producers})
        for message in listener.batches[0]:
            self.assertNotIn("traceparent", message["ctxt"])

    def test_switch_off_no_spans_and_delivery(self) -> None:
        listener = Listener()
        self.start_listener([listener])
        SWITCHES.set("trace_notifications", False)
        with self.tracer.start_as_current_span("api"):
            self.notifier().info({}, "x.y", {})
        self.assertTrue(listener.event.wait(5))
        self.assertEqual([s.name for s in self.spans()], ["api"])

    def test_requeue_recorded(self) -> None:
        class Requeue:
            def info(self, *args: Any) -> str:
                return om.NotificationResult.REQUEUE

        self.start_listener([Requeue()])
        self.notifier().info({}, "a.b", {})
        self.wait_for(lambda: bool(self.by_kind(SpanKind.CONSUMER)))
        span = self.by_kind(SpanKind.CONSUMER)[0]
        self.assertTrue(span.attributes["oslo_messaging.notification.requeued"])
