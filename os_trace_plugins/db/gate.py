"""Whether a statement's context gets a SQL span: the configured sampler decides.

One decision serves two readers: the listener (:mod:`.listeners`) and the
per-context ``_has_events`` gate that lets SQLAlchemy skip its event dispatch
where no span can follow.

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

The gate: while SQL tracing is attached, :data:`GATE`, a data descriptor
(a ``property``), replaces the ``_has_events`` class attribute of
``Engine`` and ``Dialect``.  Its getter answers the instance's own flag
(SQLAlchemy sets ``engine._has_events = True`` when someone listens on one
engine; the setter keeps it in the instance ``__dict__`` under that very
name, where the plain class flag lets it show through again once the
descriptor is gone) or :func:`wanted` for the current context.  Any failure
answers ``True`` (the dispatch runs, the listener decides).  The ``Dialect``
flag matters for ``handle_error``, a ``DialectEvents`` hook since SQLAlchemy
2.0.  ``Engine.execution_options()`` proxies read their parent's flag
through SQLAlchemy's own property: nothing to adapt.  Both flags are
private SQLAlchemy attributes (2.0, 2.1): see docs/sql.md.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from os_trace_plugins._flagged import is_flagged
from os_trace_plugins._switches import SWITCHES

__all__ = ["GATE", "DROP", "ROOT", "RECORD", "FLAG", "kind_of", "wanted",
           "wants_sql", "open_gate", "shut_gate", "is_gate", "set_provider"]

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


def _get(obj: Any, get_current: Any = otel_context.get_current,
         switches: Any = SWITCHES) -> bool:
    try:
        ctx = get_current()
        last = _last
        kind = last[1] if last[0] is ctx else kind_of(ctx)
        where = kind & _WHERE
        if where and (where == RECORD or switches.sql_root_spans) and (
                switches.trace_sqlalchemy
                or (kind & FLAG and switches.sql_trace_on_request)):
            return True
        return bool(obj.__dict__.get("_has_events", False))
    except Exception:
        return True


def _set(obj: Any, value: bool) -> None:
    # SQLAlchemy sets an instance's flag when someone listens on that instance
    obj.__dict__["_has_events"] = value


#: the descriptor installed as ``Engine._has_events`` / ``Dialect._has_events``
GATE = property(_get, _set, doc="SQLAlchemy's _has_events, per OpenTelemetry context")


def is_gate(cls: type) -> bool:
    """Whether ``cls._has_events`` is the per-context gate right now."""
    return cls.__dict__.get("_has_events") is GATE


def open_gate(cls: type, foreign: bool) -> None:
    """Per-context gate on ``cls``; plainly open when others listen class-wide.

    A foreign class-level listener must keep receiving every event, so then
    the flag is the plain ``True`` it was before us.
    """
    type.__setattr__(cls, "_has_events", True if foreign else GATE)


def shut_gate(cls: type, foreign: bool) -> None:
    """Back to SQLAlchemy's plain class flag: ``False``, or ``True`` for others."""
    global _last
    type.__setattr__(cls, "_has_events", bool(foreign))
    _last = (None, ROOT)  # drop the reference to the last context
