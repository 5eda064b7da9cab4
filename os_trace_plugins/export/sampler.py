"""A parent-based ratio sampler whose ratio follows ``[profiler] sampling_rate`` live.

The SDK's ``TraceIdRatioBased`` fixes its bound at construction; operators
change the rate during an incident (SIGHUP), so the root sampler is rebuilt
when the switch changes, and the per-span cost stays one attribute read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from os_trace_plugins._switches import SWITCHES

__all__ = ["LiveRatioSampler", "build_sampler"]


class LiveRatioSampler(Sampler):
    """Trace-id ratio sampling with a rate read from the live switches."""

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
        rate = SWITCHES.sampling_rate
        if rate != self._rate:
            self._refresh(rate)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"LiveRatioSampler{{{self._rate}}}"


def build_sampler(**_: Any) -> Sampler:
    """Parent-based: a sampled parent keeps the child, new roots use the ratio."""
    return ParentBased(root=LiveRatioSampler())
