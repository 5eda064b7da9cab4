"""A parent-based ratio sampler whose ratio follows ``[profiler] sampling_rate`` live.

The SDK's ``TraceIdRatioBased`` fixes its bound at construction; operators
change the rate during an incident (SIGHUP), so the root sampler is rebuilt
when the switch changes, and the per-span cost stays one attribute read.

A signed request is always recorded (docs/wsgi.md).  When it continues a
trace, its remote parent is sampled and the parent-based rule keeps it; when
it is signed as a *root* (no parent span), the WSGI middleware starts the
span with the start attribute ``os_trace.trust`` (``signed`` or
``osprofiler``, set only from a verified signature) and the root sampler
keeps it whatever the rate.  The sampler sees start attributes through the
public ``Sampler.should_sample`` signature, so no decision is taken around
the SDK.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from os_trace_plugins._switches import SWITCHES

__all__ = ["LiveRatioSampler", "ProfilerSampler", "build_sampler", "from_env",
           "TRUST_ATTRIBUTE", "ALWAYS_KEPT"]

#: the start attribute naming how the edge trusted a request
TRUST_ATTRIBUTE = "os_trace.trust"
#: trust values whose roots are always recorded (verified signatures)
ALWAYS_KEPT = frozenset({"signed", "osprofiler"})


class LiveRatioSampler(Sampler):
    """Trace-id ratio sampling with a rate read from the live switches;
    signed roots (:data:`TRUST_ATTRIBUTE` in :data:`ALWAYS_KEPT`) are kept."""

    def __init__(self) -> None:
        self._rate = -1.0
        self._delegate: Sampler = TraceIdRatioBased(1.0)
        self._refresh(SWITCHES.sampling_rate)

    def _refresh(self, rate: float) -> None:
        rate = min(1.0, max(0.0, float(rate)))
        if rate != self._rate:
            self._delegate = TraceIdRatioBased(rate)
            self._rate = rate

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: TraceState | None = None) -> SamplingResult:
        if attributes and attributes.get(TRUST_ATTRIBUTE) in ALWAYS_KEPT:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)
        rate = SWITCHES.sampling_rate
        if rate != self._rate:
            self._refresh(rate)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"LiveRatioSampler{{{self._rate}}}"


class ProfilerSampler(ParentBased):
    """The sampler ``setup()`` installs: parent-based over :class:`LiveRatioSampler`.

    A class of its own so ``setup()`` can tell, through ``isinstance``,
    whether a host's provider already follows ``[profiler] sampling_rate``.
    """

    def __init__(self) -> None:
        super().__init__(root=LiveRatioSampler())
        #: a child of an unsampled parent (local or remote) is always dropped
        #: with the parent's trace state kept (the SDK's ``ALWAYS_OFF``
        #: delegates of ``ParentBased``): the hooks skip asking
        #: (:mod:`os_trace_plugins._sampling`); a test checks it through
        #: ``should_sample``
        self.drops_unsampled_children = True


def build_sampler(**_: Any) -> Sampler:
    """Parent-based: a sampled parent keeps the child, new roots use the ratio."""
    return ProfilerSampler()


def from_env(arg: Any = None) -> Sampler:
    """The SDK's ``OTEL_TRACES_SAMPLER`` factory (entry point group
    ``opentelemetry_traces_sampler``, name ``os_trace_plugins``).

    How a provider built by the SDK's configurator (``opentelemetry-instrument``)
    gets our sampler, so ``[profiler] sampling_rate`` applies to it too: the
    rate is read live from ``[profiler]``; ``OTEL_TRACES_SAMPLER_ARG`` is not
    used (``arg`` is ignored).
    """
    return ProfilerSampler()
