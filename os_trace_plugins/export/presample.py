"""The root sampling decision of a new trace, made before the SDK is asked.

Why: the SDK's ``Tracer.start_span`` costs 6-10 µs on the machines we
measured even for a span it then drops, and most new roots of a busy service
(API requests, RPC messages that arrive without a carrier) are dropped by
``sampling_rate``.  When the sampler is the one ``os_trace_plugins.setup()``
installs (parent-based over
:class:`~os_trace_plugins.export.sampler.LiveRatioSampler`), the decision for
a root is a pure function of the trace id (``TraceIdRatioBased``: the low 64
bits below ``rate * 2**64``), so we draw the trace id and decide here:

- dropped: a non-recording span with a fresh, unsampled span context (what
  the SDK would have returned), without the SDK's span machinery;
- kept: the SDK starts the span under a sampled remote parent carrying that
  trace id, and the parent is then removed (the span is a root), so the
  sampling rate stays exact.

With any other sampler (a host-installed provider, tests) nothing is
predecided and the SDK decides as usual.  Used by the WSGI edge and by the
RPC hooks (a message without a carrier is a new root).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind

from os_trace_plugins._switches import SWITCHES

__all__ = ["Presampler", "start_root", "make_root", "fast_span_context"]

LOG = logging.getLogger(__name__)

_LIMIT = (1 << 64) - 1
_STATE = trace.DEFAULT_TRACE_STATE
_new_tuple = tuple.__new__
_EMPTY = Context()

try:  # the context key of the span, as set_span_in_context uses it
    from opentelemetry.trace.propagation import _SPAN_KEY as _SPAN_KEY
except ImportError:  # pragma: no cover - a future API without it
    _SPAN_KEY = None  # type: ignore[assignment]


def fast_span_context(trace_id: int, span_id: int, flags: trace.TraceFlags,
                      remote: bool = False) -> trace.SpanContext:
    """``SpanContext(trace_id, span_id, remote, flags)`` for ids known valid.

    The API's constructor re-validates the ids and costs ~1 µs here; ids we
    generated or parsed with a strict pattern are valid by construction, so
    the tuple is built directly.  Checked once at import against the real
    constructor; on a mismatch (another API version) the constructor is used.
    """
    return _new_tuple(trace.SpanContext,  # type: ignore[no-any-return]
                      (trace_id, span_id, remote, flags, _STATE, True))


def _shape_matches() -> bool:
    try:
        for remote in (False, True):
            fast = fast_span_context(1, 2, trace.TraceFlags(1), remote)
            real = trace.SpanContext(1, 2, is_remote=remote,
                                     trace_flags=trace.TraceFlags(1))
            if fast != real or not fast.is_valid or fast.is_remote is not remote \
                    or fast.trace_state is not real.trace_state and \
                    fast.trace_state != real.trace_state:
                return False
        return True
    except Exception:  # pragma: no cover - API changed shape
        return False


if not _shape_matches():  # pragma: no cover - API changed shape
    def fast_span_context(trace_id: int, span_id: int, flags: trace.TraceFlags,
                          remote: bool = False) -> trace.SpanContext:
        return trace.SpanContext(trace_id, span_id, is_remote=remote, trace_flags=flags)

_SAMPLED = trace.TraceFlags.SAMPLED
_RANDOM = getattr(trace.TraceFlags, "RANDOM_TRACE_ID", 0)


def make_root(span: trace.Span) -> None:
    """Drop the parent of an SDK span while keeping its trace id.

    A presampled root is started under a remote parent that only carries the
    drawn trace id, and a signed WSGI "root" under the signer's ids: neither
    parent is ever exported, so the span must not point at it.
    (``span._parent`` is private to the SDK; guarded.)
    """
    if getattr(span, "_parent", None) is not None:
        span._parent = None  # type: ignore[attr-defined]


def _eligible(source: Any) -> Any:
    """The id generator of ``source`` (SDK provider or tracer) when its sampler is ours."""
    try:
        from opentelemetry.sdk.trace import Tracer, TracerProvider
        from opentelemetry.sdk.trace.sampling import ParentBased

        from os_trace_plugins.export.sampler import LiveRatioSampler
    except ImportError:  # pragma: no cover - the SDK is a dependency
        return None
    if not isinstance(source, (TracerProvider, Tracer)):
        return None
    sampler = source.sampler
    if not (isinstance(sampler, ParentBased)
            and isinstance(getattr(sampler, "_root", None), LiveRatioSampler)):
        return None
    # the remote-sampled branch must keep what we decided to keep
    remote = getattr(sampler, "_remote_parent_sampled", None)
    if type(remote).__name__ != "StaticSampler" or \
            getattr(remote, "_decision", None) is None or \
            not remote._decision.is_sampled():  # type: ignore[union-attr]
        return None
    return source.id_generator


def _resolve(obj: Any) -> Any:
    """See through the API's proxy tracer to the tracer it delegates to."""
    if isinstance(obj, trace.ProxyTracer):
        return getattr(obj, "_tracer", obj)
    return obj


class Presampler:
    """Root decisions for one hook or middleware (cached per provider/tracer).

    ``source`` returns the SDK ``TracerProvider`` or ``Tracer`` that will
    start the spans (default: the global provider); it is re-read on every
    call, so a provider installed later, or a hook re-instrumented with
    another one, is followed.
    """

    def __init__(self, source: Callable[[], Any] | None = None) -> None:
        self._source = source or trace.get_tracer_provider
        self._seen: Any = None
        self._untraced = False
        self._ids: Any = None
        self._flags = trace.TraceFlags(0)
        self._rate = -1.0
        self._bound = 0

    def _current(self) -> Any:
        obj = self._source()
        if obj is not self._seen:
            self._refresh(obj)
        return obj

    def _refresh(self, obj: Any) -> None:
        self._seen = obj
        real = _resolve(obj)
        self._untraced = isinstance(real, (trace.ProxyTracerProvider,
                                           trace.NoOpTracerProvider, trace.NoOpTracer))
        self._ids = _eligible(real)
        random = bool(self._ids is not None and self._ids.is_trace_id_random())
        self._flags = trace.TraceFlags(_RANDOM if random else 0)
        if isinstance(real, trace.NoOpTracer):
            # a proxy tracer delegates once a provider is set: look again next time
            self._seen = None

    def untraced(self) -> bool:
        """No tracer provider is installed (tracing not set up): skip everything."""
        self._current()
        return self._untraced

    def decide(self) -> tuple[trace.SpanContext, bool] | None:
        """(span context, sampled) for a new root, or None: let the SDK decide.

        When sampled, the span context is the *parent* to start the span under
        (then made a root); when dropped, it is the span's own context.
        """
        self._current()
        ids = self._ids
        if ids is None:
            return None
        rate = SWITCHES.sampling_rate
        if rate != self._rate:
            self._bound = round(min(1.0, max(0.0, float(rate))) * (_LIMIT + 1))
            self._rate = rate
        trace_id = ids.generate_trace_id()
        if trace_id & _LIMIT < self._bound:
            return fast_span_context(trace_id, ids.generate_span_id(),
                                     trace.TraceFlags(self._flags | _SAMPLED), True), True
        return fast_span_context(trace_id, ids.generate_span_id(), self._flags), False


def start_root(tracer: trace.Tracer, presampler: Presampler,
               name: str | Callable[[], str], kind: SpanKind,
               parent: Context | None = None,
               links: Sequence[Link] | None = None) -> trace.Span:
    """Start a new root span, predecided when the sampler allows it.

    ``parent`` is a context without a span (it may carry baggage); ``name``
    may be a callable so a dropped root does not even build it.  A dropped
    root is a :class:`~opentelemetry.trace.NonRecordingSpan` with a fresh
    unsampled span context: children and remote peers see the decision.
    """
    pre = presampler.decide()
    if pre is None:  # not our sampler: the SDK decides
        return tracer.start_span(name if isinstance(name, str) else name(),
                                 parent if parent is not None else _EMPTY, kind,
                                 links=links)
    sc, keep = pre
    if not keep:
        return trace.NonRecordingSpan(sc)
    span = tracer.start_span(
        name if isinstance(name, str) else name(),
        trace.set_span_in_context(trace.NonRecordingSpan(sc),
                                  parent if parent is not None else _EMPTY),
        kind, links=links)
    make_root(span)
    return span
