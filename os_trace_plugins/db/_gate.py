"""Whether a statement's context gets a SQL span: the configured sampler decides.

:func:`kind_of` classifies an OpenTelemetry context, through public API only
(``trace.get_current_span(ctx)``, ``baggage.get_baggage``):

* ``ROOT``: no valid current span (a periodic task).  The listener starts a
  root span only when ``sql_root_spans`` is on; the sampler then decides with
  the trace id the SDK draws (unknown here, so it is not asked in advance).
* ``RECORD`` / ``DROP``: inside a trace.  The *configured* sampler is asked,
  through its public ``should_sample(parent_ctx, trace_id, name, kind)``,
  what it would do with a CLIENT child named ``SQL`` of this context (the
  provider's ``sampler`` attribute of the SDK; any other provider: the
  listener's ``start_span`` decides, so ``RECORD``).  With the SDK's
  ``ParentBased`` default an unsampled parent gives ``DROP``; a sampler that
  records children of unsampled parents gives ``RECORD``: nothing of ours
  second-guesses it.
* ``FLAG``, or-ed in: the baggage carries ``os_trace.sql=1``.

The answer is cached on the identity of the last context seen (one
module-level tuple replaced whole, so threads never see a torn pair;
contexts are immutable and the cache holds a reference, so ``is`` cannot
match a different one): a request's statements ask the sampler once, not
per statement.  A sampler whose answer for the same parent changes over
time (rate limiting) is therefore asked once per context object; the span
the listener starts still goes through the SDK's own sampling.  The switches
are read live by :func:`wanted`.

Why "gate": the answer also decides whether a cursor call is wrapped in a
span at all (:mod:`._execute`); nothing of SQLAlchemy is touched here.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from os_trace_plugins._flagged import is_flagged
from os_trace_plugins._switches import SWITCHES

__all__ = ["DROP", "ROOT", "RECORD", "FLAG", "kind_of", "wanted", "wants_sql",
           "set_provider", "forget"]

DROP, ROOT, RECORD, FLAG = 0, 1, 2, 4
_WHERE = 3  # DROP / ROOT / RECORD

#: (the last context classified, its kind); replaced whole, never mutated
_last: tuple[Any, int] = (None, ROOT)

#: the tracer provider whose sampler decides (None: the global one)
_provider: Any = None


def set_provider(provider: Any) -> None:
    """Ask ``provider``'s sampler from now on (None: the global provider's)."""
    global _provider, _last
    _provider = provider
    _last = (None, ROOT)


def _classify(ctx: Any) -> int:
    flag = FLAG if is_flagged(ctx) else 0
    span_ctx = trace.get_current_span(ctx).get_span_context()
    if not span_ctx.is_valid:
        return ROOT | flag
    provider = _provider if _provider is not None else trace.get_tracer_provider()
    sampler = getattr(provider, "sampler", None)
    if sampler is None:  # not the SDK: start_span decides
        return RECORD | flag
    result = sampler.should_sample(ctx, span_ctx.trace_id, "SQL", SpanKind.CLIENT)
    return (RECORD if result.decision.is_recording() else DROP) | flag


def kind_of(ctx: Any) -> int:
    """The classification of ``ctx`` (cached on the last context's identity)."""
    global _last
    last = _last
    if last[0] is ctx:
        return last[1]
    kind = _classify(ctx)
    _last = (ctx, kind)
    return kind


def wanted(kind: int, switches: Any = SWITCHES) -> bool:
    """Whether a context of ``kind`` gets a span under the live switches."""
    where = kind & _WHERE
    if where == DROP or (where == ROOT and not switches.sql_root_spans):
        return False
    return bool(switches.trace_sqlalchemy
                or (kind & FLAG and switches.sql_trace_on_request))


def wants_sql(ctx: Any = None) -> bool:
    """Whether a statement run in ``ctx`` (default: current) would get a span."""
    return wanted(kind_of(otel_context.get_current() if ctx is None else ctx))


def forget() -> None:
    """Drop the cached context (tests, uninstall)."""
    global _last
    _last = (None, ROOT)
