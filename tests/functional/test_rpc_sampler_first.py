"""The sampler-first fast path of the RPC hooks decides exactly what start_span would.

Inside an unsampled trace the hooks ask the provider's sampler before
building a span (:mod:`os_trace_plugins._sampling`) and build none when it
drops the span.  These tests pin the cases where that shortcut must *not*
be taken: a host sampler that records children of unsampled parents gets
its spans on both sides, and a sampler that drops but edits the trace state
has its edit travel; and the case where it is taken: no span, the parent's
own span context on the wire and current in the endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, TraceFlags, TraceState
from opentelemetry.util.types import Attributes

from tests.functional.rpc_env import Recorder, RPCTestCase
from tests.functional.test_rpc_unsampled import WireSpy

PARENT = trace.SpanContext(0x5D1C0FFEE0000000000000000000ABCD, 0xBADC0DE5, is_remote=True,
                           trace_flags=TraceFlags(0),
                           trace_state=TraceState([("vendor", "v1")]))


class DropButEditState(Sampler):
    """Drops every span but adds an entry to the trace state (what a vendor
    sampler recording its decision might do)."""

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: TraceState | None = None) -> SamplingResult:
        sc = trace.get_current_span(parent_context).get_span_context()
        return SamplingResult(Decision.DROP, None, sc.trace_state.add("dec", "drop"))

    def get_description(self) -> str:
        return "DropButEditState"


class SamplerFirstTest(RPCTestCase):
    #: the sampler of the provider the hooks are instrumented with
    sampler: Sampler = ParentBased(ALWAYS_ON)

    def setUp(self) -> None:
        super().setUp()
        self.rpc_hook.uninstrument()
        self.notify_hook.uninstrument()
        self.provider = TracerProvider(sampler=self.sampler)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.rpc_hook.instrument(self.conf, self.provider)
        self.notify_hook.instrument(self.conf, self.provider)

    def call_in_unsampled_parent(self) -> tuple[WireSpy, Recorder]:
        spy = WireSpy(self.transport)
        rec = Recorder()
        self.start_server([rec])
        token = context.attach(trace.set_span_in_context(trace.NonRecordingSpan(PARENT)))
        try:
            self.assertEqual(self.client().call({"request_id": "r1"}, "echo", value=1), 1)
        finally:
            context.detach(token)
        return spy, rec


class DroppedChildrenTest(SamplerFirstTest):
    def test_no_span_and_the_parent_context_travels_as_it_is(self) -> None:
        spy, rec = self.call_in_unsampled_parent()
        self.assertEqual(self.spans(), [])
        header = spy.sent[0]["traceparent"]
        self.assertEqual(header, f"00-{PARENT.trace_id:032x}-{PARENT.span_id:016x}-00")
        self.assertEqual(spy.sent[0]["tracestate"], "vendor=v1")
        seen = rec.seen[0]
        self.assertEqual((seen["trace_id"], seen["span_id"]),
                         (PARENT.trace_id, PARENT.span_id))
        self.assertFalse(seen["sampled"])
        self.assertEqual(seen["ctxt"], {"request_id": "r1"})  # keys stripped


class HostSamplerRecordsChildrenTest(SamplerFirstTest):
    """A non-parent-based sampler that samples children of unsampled parents."""

    sampler = ALWAYS_ON

    def test_both_sides_get_their_spans(self) -> None:
        spy, rec = self.call_in_unsampled_parent()
        client = self.span("echo call")
        server = self.span("echo process")
        self.assertEqual(client.kind, SpanKind.CLIENT)
        self.assertEqual(client.context.trace_id, PARENT.trace_id)
        self.assertEqual(client.parent.span_id, PARENT.span_id)
        self.assertChildOf(server, client)
        self.assertEqual(rec.seen[0]["span_id"], server.context.span_id)
        self.assertIn(f"-{client.context.span_id:016x}-", spy.sent[0]["traceparent"])


class DropWithEditedStateTest(SamplerFirstTest):
    sampler = DropButEditState()

    def test_the_edited_trace_state_travels(self) -> None:
        spy, rec = self.call_in_unsampled_parent()
        self.assertEqual(self.spans(), [])
        sent = spy.sent[0]
        self.assertEqual(sent["tracestate"], "dec=drop,vendor=v1")
        # start_span built the non-recording child: its own span id on the wire
        self.assertNotIn(f"-{PARENT.span_id:016x}-", sent["traceparent"])
        self.assertEqual(sent["traceparent"][3:35], f"{PARENT.trace_id:032x}")
        self.assertFalse(rec.seen[0]["sampled"])

