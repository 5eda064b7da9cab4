"""Ask the configured sampler before building a span: the unsampled fast path.

Inside an unsampled trace (the usual case behind an API that samples a
fraction of its requests), ``Tracer.start_span`` asks the sampler, is told
DROP, and still draws a span id and builds a ``SpanContext`` and a
``NonRecordingSpan`` that differ from the parent's context by that span id
only; the hook then formats, parses and attaches it.  That was most of the
unsampled cost of every hook.

:func:`drops` asks the same sampler the SDK would ask, with the same
arguments ``start_span`` passes (the parent context, the parent's trace id,
the span's name, kind, start attributes and links), through public API only:
the SDK ``TracerProvider.sampler`` attribute and ``Sampler.should_sample``.
It answers True only when building the span would change nothing a
downstream hop can see:

* the parent span context is valid and *not* sampled (so the non-recording
  span would carry the parent's trace id and unsampled flags on);
* the decision is ``DROP`` and the sampler kept the parent's ``trace_state``
  (a sampler that edits it must have its edit travel: ``start_span``).

The hook then creates no span: the caller side injects the current span
context as it is, the server side attaches the remote parent's
non-recording context, so work the endpoint does carries the decision on.
In every other case (no SDK provider, a root, a sampled parent, RECORD,
an edited trace state) the hook calls ``Tracer.start_span`` exactly as
before, so a host sampler that records children of unsampled parents still
gets its spans.

One known sampler is not asked: the one ``setup()`` installs
(:class:`os_trace_plugins.export._sampler.ProfilerSampler`, parent-based
with the SDK's default ``ALWAYS_OFF`` for children of unsampled parents)
states this through its public ``drops_unsampled_children`` attribute, and
``tests/unit/test_sampling_shortcut.py`` proves, through ``should_sample``,
that the statement holds.  The provider is the one the hook was
instrumented with (``setup()`` passes its own; re-instrumenting with another
provider follows it), else the global one, read on each call (a plain
global read), so nothing stale is cached.

A dropped span is not counted by the SDK's own span metrics (it is never
started): the one visible difference, documented in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
from opentelemetry.util.types import Attributes

__all__ = ["drops"]

_SAMPLED = TraceFlags.SAMPLED
_DROP: Any = None  # opentelemetry.sdk.trace.sampling.Decision.DROP, once the SDK is seen



def _drop_decision() -> Any:
    global _DROP
    if _DROP is None:
        from opentelemetry.sdk.trace.sampling import Decision  # a provider has one

        _DROP = Decision.DROP
    return _DROP


def drops(provider: Any, parent: Context, sc: SpanContext, name: str, kind: SpanKind,
          attributes: Attributes = None, links: Sequence[Link] | None = None) -> bool:
    """Whether ``start_span(name, parent, kind, attributes, links)`` would
    only return a non-recording copy of ``sc``, the current span context of
    ``parent`` (see the module docstring).  ``provider``: the SDK
    TracerProvider (None: the global one) or an SDK Tracer, whose public
    ``sampler`` attribute is the one its ``start_span`` asks.  Never raises for a sane sampler;
    the hooks call it under their guard."""
    if sc.trace_flags & _SAMPLED or not sc.is_valid:  # int ops: no property frame
        return False
    sampler = getattr(trace.get_tracer_provider() if provider is None else provider,
                      "sampler", None)
    if sampler is None:
        return False
    if getattr(sampler, "drops_unsampled_children", False) is True:
        return True
    result = sampler.should_sample(parent, sc.trace_id, name, kind, attributes,
                                   links or ())
    if result.decision is not _drop_decision():
        return False
    state = result.trace_state
    return state is sc.trace_state or state == sc.trace_state
