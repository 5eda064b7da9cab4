"""Mixed fleets: oslo.messaging's built-in tracing, OSProfiler callers, peers without us."""

from __future__ import annotations

import unittest
import uuid
from typing import Any

import oslo_messaging as om
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from oslo_context import context as oslo_context
from osprofiler import profiler

from os_trace_plugins._switches import SWITCHES
from tests.functional.rpc_env import (
    HAS_BUILTIN_TRACING,
    NO_BUILTIN_TRACING,
    Recorder,
    RPCTestCase,
)


@unittest.skipUnless(HAS_BUILTIN_TRACING, NO_BUILTIN_TRACING)
class BuiltinTracingTest(RPCTestCase):
    """``[oslo_messaging_tracing] tracing_enabled = true`` in the same process."""

    def setUp(self) -> None:
        super().setUp()
        self.conf.set_override("tracing_enabled", True, group="oslo_messaging_tracing")

    def scopes(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for s in self.spans():
            out.setdefault(s.instrumentation_scope.name, []).append(s.name)
        return out

    def test_ours_supersedes_no_duplicates(self) -> None:
        self.start_server([Recorder()])
        with self.tracer.start_as_current_span("api"):
            self.client().call({}, "echo")
        scopes = self.scopes()
        self.assertNotIn("oslo.messaging", scopes)
        self.assertEqual(sorted(scopes["os_trace_plugins.rpc"]), ["echo call", "echo process"])
        self.assertChildOf(self.span("echo process"), self.span("echo call"))

    def test_builtin_runs_when_ours_is_off(self) -> None:
        self.start_server([Recorder()])
        SWITCHES.set("trace_rpc", False)
        with self.tracer.start_as_current_span("api"):
            self.client().call({}, "echo")
        scopes = self.scopes()
        self.assertNotIn("os_trace_plugins.rpc", scopes)
        self.assertEqual(len(scopes["oslo.messaging"]), 2)

    def test_builtin_restored_after_uninstrument(self) -> None:
        # private API use: oslo_messaging._tracing.trace_send/trace_receive are
        # what rpc/_client.py and rpc/_server.py call; fails loudly if they move
        from oslo_messaging import _tracing
        from oslo_messaging._tracing import client as tracing_client
        self.assertIsNot(_tracing.__dict__["trace_send"], tracing_client.trace_send)
        self.rpc_hook.uninstrument()
        self.assertIs(_tracing.__dict__["trace_send"], tracing_client.trace_send)
        self.assertIs(_tracing.__dict__["trace_receive"], tracing_client.trace_receive)


class PeerWithoutPluginTest(RPCTestCase):

    def test_builtin_only_caller_continues_here(self) -> None:
        # a caller that has only oslo.messaging's built-in tracing: global inject
        rec = Recorder()
        self.start_server([rec])
        with self.tracer.start_as_current_span("remote-producer") as producer:
            ctxt: dict[str, Any] = {"request_id": "r"}
            propagate.inject(ctxt)
        self.transport._driver.send(om.Target(topic=self.topic), ctxt,
                                    {"method": "echo", "args": {}}, wait_for_reply=True,
                                    timeout=5)
        server = self.span("echo process")
        self.assertEqual(server.parent.span_id, producer.get_span_context().span_id)
        self.assertEqual(rec.seen[0]["ctxt"], {"request_id": "r"})

    def test_server_without_plugin_gets_a_usable_context(self) -> None:
        # what an un-instrumented server polls off the bus
        target = om.Target(topic=self.topic, server="raw")
        listener = self.transport._listen(target, 1, None)
        self.addCleanup(listener.cleanup)
        poll = listener._poll_style_listener
        ctx = oslo_context.RequestContext(request_id="req-raw", user_id="u")
        with self.tracer.start_as_current_span("api"):
            self.client(server="raw").cast(ctx.to_dict(), "echo")
        (incoming,) = poll.poll(timeout=2)
        wire = incoming.ctxt
        self.assertIn("traceparent", wire)
        self.assertNotIn("trace_info", wire)
        # oslo.context ignores unknown keys: an old server keeps working
        self.assertEqual(oslo_context.RequestContext.from_dict(wire).request_id, "req-raw")


class OSProfilerCallerTest(RPCTestCase):

    def osprofiler_trace_info(self) -> dict[str, str]:
        profiler.init("SECRET-HMAC")
        self.addCleanup(profiler.clean)
        prof = profiler.get()
        prof.start("api-call")
        return {"hmac_key": prof.hmac_key, "base_id": prof.get_base_id(),
                "parent_id": prof.get_id()}

    def test_trace_info_continued_and_never_sent_on(self) -> None:
        info = self.osprofiler_trace_info()
        onward_topic = self.topic + "-onward"
        target = om.Target(topic=onward_topic, server="raw")
        listener = self.transport._listen(target, 1, None)
        self.addCleanup(listener.cleanup)
        client = self.client(topic=onward_topic, server="raw")
        seen: list[Any] = []

        class Relay:
            def relay(self, ctxt: Any) -> None:
                seen.append(dict(ctxt))
                client.cast(ctxt, "next")

        self.start_server([Relay()])
        self.transport._driver.send(
            om.Target(topic=self.topic), {"request_id": "r", "trace_info": info},
            {"method": "relay", "args": {}}, wait_for_reply=True, timeout=5)
        server = self.span("relay process")
        self.assertEqual(server.context.trace_id, uuid.UUID(info["base_id"]).int)
        self.assertEqual(server.parent.span_id,
                         uuid.UUID(info["parent_id"]).int & ((1 << 64) - 1))
        self.assertEqual(seen, [{"request_id": "r"}])
        (incoming,) = listener._poll_style_listener.poll(timeout=2)
        wire = repr(incoming.ctxt)
        self.assertNotIn("trace_info", incoming.ctxt)
        self.assertNotIn("SECRET-HMAC", wire)
        self.assertIn(f"{server.context.trace_id:032x}", incoming.ctxt["traceparent"])
        self.assertEqual(self.span("next cast").parent.span_id, server.context.span_id)

    def test_trace_info_left_alone_when_off(self) -> None:
        # with trace_rpc off, OSProfiler's own serializer owns its key
        info = self.osprofiler_trace_info()
        rec = Recorder()
        self.start_server([rec])
        SWITCHES.set("trace_rpc", False)
        self.transport._driver.send(
            om.Target(topic=self.topic), {"trace_info": info},
            {"method": "echo", "args": {}}, wait_for_reply=True, timeout=5)
        self.assertEqual(rec.seen[0]["ctxt"], {"trace_info": info})
        self.assertEqual(self.spans(), [])


class UnsampledTest(RPCTestCase):

    def test_unsampled_trace_propagates_without_spans(self) -> None:
        inner = self.topic + "-in"
        rec = Recorder()
        self.start_server([rec], topic=inner, server="in")
        client = self.client(topic=inner)

        class Outer:
            def relay(self, ctxt: Any) -> None:
                client.call(ctxt, "echo")

        self.start_server([Outer()])
        parent = trace.NonRecordingSpan(trace.SpanContext(
            0x1234, 0x5678, is_remote=True, trace_flags=trace.TraceFlags(0)))
        with trace.use_span(parent):
            self.client().call({}, "relay")
        self.assertEqual(self.spans(), [])
        self.assertEqual(rec.seen[0]["trace_id"], 0x1234)
        self.assertFalse(rec.seen[0]["sampled"])

    def test_kinds(self) -> None:
        self.start_server([Recorder()])
        self.client().call({}, "echo")
        self.assertEqual({s.kind for s in self.spans()}, {SpanKind.CLIENT, SpanKind.SERVER})
