"""``_sampling.drops``: when the hooks may skip building a span.

The sampler ``setup()`` installs is not asked (it says so through
``drops_unsampled_children``); these tests prove, through its public
``should_sample``, that the statement holds, so a change of its delegates
fails here loudly.
"""

from __future__ import annotations

import unittest

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState

from os_trace_plugins import _sampling
from os_trace_plugins.export._sampler import ProfilerSampler


def _ctx(sampled: bool, remote: bool) -> tuple[Context, SpanContext]:
    sc = SpanContext(0xABC, 0xDEF, is_remote=remote,
                     trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else 0),
                     trace_state=TraceState([("k", "v")]))
    return trace.set_span_in_context(NonRecordingSpan(sc), Context()), sc


class ProfilerSamplerClaimTest(unittest.TestCase):
    def test_children_of_unsampled_parents_are_dropped_with_the_state_kept(self) -> None:
        sampler = ProfilerSampler()
        self.assertIs(sampler.drops_unsampled_children, True)
        for remote in (True, False):
            for kind in SpanKind:
                ctx, sc = _ctx(False, remote)
                result = sampler.should_sample(ctx, sc.trace_id, "x", kind, None, ())
                self.assertEqual(result.decision, Decision.DROP)
                self.assertEqual(result.trace_state, sc.trace_state)


class DropsTest(unittest.TestCase):
    def test_our_sampler_unsampled_parent(self) -> None:
        provider = TracerProvider(sampler=ProfilerSampler())
        for remote in (True, False):
            ctx, sc = _ctx(False, remote)
            self.assertTrue(_sampling.drops(provider, ctx, sc, "x", SpanKind.CLIENT))

    def test_sampled_parent_or_no_parent_goes_through_start_span(self) -> None:
        provider = TracerProvider(sampler=ProfilerSampler())
        ctx, sc = _ctx(True, True)
        self.assertFalse(_sampling.drops(provider, ctx, sc, "x", SpanKind.CLIENT))
        self.assertFalse(_sampling.drops(provider, Context(), trace.INVALID_SPAN_CONTEXT,
                                         "x", SpanKind.CLIENT))

    def test_a_host_sampler_is_asked(self) -> None:
        ctx, sc = _ctx(False, True)
        self.assertTrue(_sampling.drops(TracerProvider(sampler=ParentBased(ALWAYS_ON)),
                                        ctx, sc, "x", SpanKind.SERVER))
        self.assertFalse(_sampling.drops(TracerProvider(sampler=ALWAYS_ON),
                                         ctx, sc, "x", SpanKind.SERVER))

    def test_not_an_sdk_provider(self) -> None:
        ctx, sc = _ctx(False, True)
        self.assertFalse(_sampling.drops(trace.NoOpTracerProvider(), ctx, sc, "x",
                                         SpanKind.CLIENT))
