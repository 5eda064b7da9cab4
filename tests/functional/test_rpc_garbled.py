"""Garbled carriers never reach the service: delivered, new root, one log line."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import oslo_messaging as om
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oslo_messaging._drivers.impl_fake import FakeIncomingMessage
from oslo_messaging.rpc.dispatcher import RPCDispatcher

from os_trace_plugins.rpc import _server as rpc_server
from tests.functional.rpc_env import Recorder, RPCTestCase, StrictContext, StrictSerializer

GOOD = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

values = st.one_of(
    st.none(), st.integers(), st.booleans(), st.binary(max_size=40),
    st.text(max_size=60), st.just("x" * 10_000), st.just(GOOD),
    st.just(GOOD.replace("0a", "zz")), st.just(GOOD[:-3]), st.just(GOOD.upper()),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)
trace_infos = st.one_of(
    values,
    st.fixed_dictionaries({}, optional={
        "base_id": st.one_of(st.uuids().map(str), values),
        "parent_id": st.one_of(st.uuids().map(str), values),
        "hmac_key": st.text(max_size=10)}),
)
carriers = st.fixed_dictionaries({}, optional={
    "traceparent": values, "tracestate": values, "baggage": values,
    "trace_info": trace_infos})


class GarbledCarrierTest(RPCTestCase):

    def setUp(self) -> None:
        super().setUp()
        rpc_server.BAD_CARRIER_LOG.reset()
        self.rec = Recorder()
        self.dispatcher = RPCDispatcher([self.rec], StrictSerializer())

    @settings(max_examples=200, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(carrier=carriers)
    def test_property_never_raises_into_the_service(self, carrier: dict[str, Any]) -> None:
        self.exporter.clear()
        self.rec.seen.clear()
        ctxt = {"request_id": "req-1", **carrier}
        incoming = FakeIncomingMessage(ctxt, {"method": "echo", "args": {"value": 1}},
                                       None, None)
        self.assertEqual(self.dispatcher.dispatch(incoming), 1)
        got = self.rec.seen[0]["ctxt"]
        self.assertIsInstance(got, StrictContext)  # no trace key reached the serializer
        (span,) = self.spans()
        if span.parent is not None:  # continued: only from a valid carrier
            self.assertTrue(carrier.get("traceparent") == GOOD
                            or isinstance(carrier.get("trace_info"), dict))

    def test_one_log_line_for_many_bad_messages(self) -> None:
        with self.assertLogs("os_trace_plugins.rpc", logging.WARNING) as logs:
            for bad in (b"\x00", 5, None, "x" * 10_000, "nothex", {"a": 1}):
                incoming = FakeIncomingMessage({"traceparent": bad},
                                               {"method": "echo", "args": {}}, None, None)
                self.dispatcher.dispatch(incoming)
        self.assertEqual(len(logs.records), 1, [r.getMessage() for r in logs.records])
        self.assertIn("traceparent", logs.records[0].getMessage())
        spans = self.spans()
        self.assertEqual(len(spans), 6)
        self.assertTrue(all(s.parent is None for s in spans))
        self.assertEqual(len({s.context.trace_id for s in spans}), 6)

    def test_end_to_end_garbage_call_delivered(self) -> None:
        self.start_server([self.rec], serializer=StrictSerializer())
        for bad in ({"traceparent": b"\xff" * 10}, {"trace_info": "oops"},
                    {"trace_info": {"base_id": str(uuid.uuid4()), "parent_id": 7}},
                    {"baggage": 12, "tracestate": ["x"]}):
            self.transport._driver.send(om.Target(topic=self.topic), bad,
                                        {"method": "echo", "args": {"value": 2}},
                                        wait_for_reply=True, timeout=5)
        self.assertEqual(len(self.rec.seen), 4)
        self.assertTrue(all(isinstance(s["ctxt"], StrictContext) for s in self.rec.seen))
        self.assertTrue(all(s.parent is None for s in self.spans()))

    def test_internal_failure_does_not_break_the_call(self) -> None:
        # a broken tracer: our code fails, the service does not notice
        class Boom:
            def start_span(self, *a: Any, **k: Any) -> Any:
                raise RuntimeError("tracer exploded")

        self.rpc_hook.tracer = Boom()  # type: ignore[assignment]
        incoming = FakeIncomingMessage({"traceparent": GOOD}, {"method": "echo",
                                       "args": {"value": 3}}, None, None)
        with self.assertLogs("os_trace_plugins", logging.ERROR):
            self.assertEqual(self.dispatcher.dispatch(incoming), 3)
        self.assertIsInstance(self.rec.seen[0]["ctxt"], StrictContext)
        with self.assertRaises(ValueError):  # the host's own exception, unchanged
            self.dispatcher.dispatch(FakeIncomingMessage(
                {}, {"method": "fail", "args": {}}, None, None))
