"""The root sampling decision of a request, made before the SDK is asked.

Why: the SDK's ``Tracer.start_span`` costs 6-10 µs on the machines we
measured even for a span it then drops, and most requests of a busy API are
new roots that ``sampling_rate`` drops. When the provider's sampler is the one
``os_trace_plugins.setup()`` installs (parent-based over
:class:`~os_trace_plugins.export.sampler.LiveRatioSampler`), the decision for a
root is a pure function of the trace id (``TraceIdRatioBased``: the low 64
bits below ``rate * 2**64``), so we draw the trace id and decide here:

- dropped: a non-recording span with a fresh, unsampled span context (what
  the SDK would have returned), without the SDK's span machinery;
- kept: the SDK starts the span under a sampled remote parent carrying that
  trace id, and the parent is then removed (the span is a root), so the
  sampling rate stays exact.

With any other sampler (a host-installed provider, tests) nothing is
predecided and the SDK decides as usual.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace

from os_trace_plugins._switches import SWITCHES

__all__ = ["Presampler"]

LOG = logging.getLogger(__name__)

_LIMIT = (1 << 64) - 1
_STATE = trace.DEFAULT_TRACE_STATE
_new_tuple = tuple.__new__


def _fast_context(trace_id: int, span_id: int, flags: trace.TraceFlags,
                  ) -> trace.SpanContext:
    """``SpanContext(trace_id, span_id, False, flags)`` for ids we generated.

    The API's constructor re-validates the ids and costs ~1 µs here; ids from
    the SDK's generator are valid by construction, so the tuple is built
    directly. Checked once at import against the real constructor.
    """
    return _new_tuple(trace.SpanContext,  # type: ignore[no-any-return]
                      (trace_id, span_id, False, flags, _STATE, True))


if _fast_context(1, 2, trace.TraceFlags(1)) != trace.SpanContext(
        1, 2, is_remote=False, trace_flags=trace.TraceFlags(1)) or not _fast_context(
        1, 2, trace.TraceFlags(1)).is_valid:  # pragma: no cover - API changed shape
    def _fast_context(trace_id: int, span_id: int, flags: trace.TraceFlags,
                      ) -> trace.SpanContext:
        return trace.SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags)
_SAMPLED = trace.TraceFlags.SAMPLED
_RANDOM = getattr(trace.TraceFlags, "RANDOM_TRACE_ID", 0)


def _eligible(provider: Any) -> Any:
    """The provider's id generator when its sampler is ours, else None."""
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import ParentBased

        from os_trace_plugins.export.sampler import LiveRatioSampler
    except ImportError:  # pragma: no cover - the SDK is a dependency
        return None
    if not isinstance(provider, TracerProvider):
        return None
    sampler = provider.sampler
    if not (isinstance(sampler, ParentBased)
            and isinstance(getattr(sampler, "_root", None), LiveRatioSampler)):
        return None
    # the remote-sampled branch must keep what we decided to keep
    remote = getattr(sampler, "_remote_parent_sampled", None)
    if type(remote).__name__ != "StaticSampler" or \
            getattr(remote, "_decision", None) is None or \
            not remote._decision.is_sampled():  # type: ignore[union-attr]
        return None
    return provider.id_generator


class Presampler:
    """Root decisions for one middleware instance (cached per provider)."""

    def __init__(self) -> None:
        self._provider: Any = None
        self._untraced = False
        self._ids: Any = None
        self._flags = trace.TraceFlags(0)
        self._rate = -1.0
        self._bound = 0

    def _refresh(self, provider: Any) -> None:
        self._provider = provider
        self._untraced = isinstance(provider, (trace.ProxyTracerProvider,
                                               trace.NoOpTracerProvider))
        self._ids = _eligible(provider)
        random = bool(self._ids is not None and self._ids.is_trace_id_random())
        self._flags = trace.TraceFlags(_RANDOM if random else 0)

    def untraced(self) -> bool:
        """No tracer provider is installed (tracing not set up): skip everything."""
        provider = trace.get_tracer_provider()
        if provider is not self._provider:
            self._refresh(provider)
        return self._untraced

    def decide(self) -> tuple[trace.SpanContext, bool] | None:
        """(span context, sampled) for a new root, or None: let the SDK decide.

        When sampled, the span context is the *parent* to start the span under
        (then made a root); when dropped, it is the span's own context.
        The provider is the one :meth:`untraced` saw just before.
        """
        if self._provider is None:
            self._refresh(trace.get_tracer_provider())
        ids = self._ids
        if ids is None:
            return None
        rate = SWITCHES.sampling_rate
        if rate != self._rate:
            self._bound = round(min(1.0, max(0.0, float(rate))) * (_LIMIT + 1))
            self._rate = rate
        trace_id = ids.generate_trace_id()
        if trace_id & _LIMIT < self._bound:
            return trace.SpanContext(
                trace_id, ids.generate_span_id(), is_remote=True,
                trace_flags=trace.TraceFlags(self._flags | _SAMPLED)), True
        return _fast_context(trace_id, ids.generate_span_id(), self._flags), False
