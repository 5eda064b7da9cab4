"""A per-context ``_has_events`` gate: SQLAlchemy dispatches only where a span can follow.

SQLAlchemy checks a private flag before every event point of a statement:
``Connection`` reads ``self._has_events or self.engine._has_events`` (before
and after each cursor execute, begin, commit, rollback, ...) and
``dialect._has_events`` (the dialect's ``do_execute*`` and
``do_setinputsizes`` hooks, and ``handle_error``).  As soon as the flag is
true, the statement walks SQLAlchemy's generic event dispatch, which costs
more than our listener body (about 15 µs a statement on the benchmark
machine for two no-op listeners).  Opening the flag process-wide while SQL
tracing is on therefore made a statement inside an *unsampled* trace pay
that dispatch for a span it never gets.

While SQL tracing is attached, :func:`open_gate` puts :data:`GATE`, a data
descriptor (a ``property``), in place of the ``_has_events`` class attribute
of ``Engine`` and ``Dialect``.  Its getter answers, for the instance it is
read on:

* the instance's own value (SQLAlchemy sets ``engine._has_events = True``, or
  the dialect's, when someone listens on that one engine; the setter keeps
  that in the instance ``__dict__`` under the very name ``_has_events``,
  where the plain class attribute lets it show through again once the
  descriptor is removed: nothing needs restoring), or
* whether the current OpenTelemetry context wants our listeners, the
  listener's own decision (see :mod:`.listeners`): not inside a valid span
  context that is not sampled (the listener never records there, flagged
  baggage or not); otherwise when ``trace_sqlalchemy`` is on, or the
  baggage carries ``os_trace.sql=1`` and ``sql_trace_on_request`` permits
  it.  With no current span the gate is open when those switches say so
  (the listener starts a root span and the sampler decides).

The context part is cached on the identity of the last context seen (one
module-level tuple, replaced whole, so threads never see a torn pairing;
contexts are immutable and the cache holds a reference, so ``is`` can never
match a different context); the switches are read live.  Any exception in
the getter answers ``True`` (the dispatch runs; the listener decides).

Why the ``Dialect`` flag as well: ``before_cursor_execute``,
``after_cursor_execute`` and ``rollback`` are ``ConnectionEvents``, gated by
the engine flag only, but since SQLAlchemy 2.0 ``handle_error`` is a
``DialectEvents`` hook: ``Connection._handle_dbapi_exception`` dispatches it
only ``if self.dialect._has_events``.  Without it a failed statement's span
would end as "abandoned" instead of carrying the driver's error.  The same
context predicate serves both, so an unsampled statement runs SQLAlchemy's
uninstrumented path for the dialect hooks too.

``Engine.execution_options()`` returns an ``OptionEngine`` whose
``_has_events`` is SQLAlchemy's own property (``OptionEngineMixin``, first
in its MRO, so :data:`GATE` does not shadow it): it reads the parent
engine's ``_has_events``, that is this getter, or its own ``__dict__``
value.  Nothing to adapt.

Known limits: a statement's events are all read in the context its
``before_cursor_execute`` ran in, except a connection's ``rollback`` issued
later from an unsampled context, which then does not reach our rollback
listener; a span left open by a statement that never reported back is then
ended at that connection's next traced statement or when tracing is
switched off.  Reading ``Engine._has_events`` on the class returns the
descriptor itself (truthy).  All of this relies on SQLAlchemy's private
``_has_events`` attribute (2.0 and 2.1), as the process-wide switch did.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.db.listeners import _SPAN_KEY, is_flagged

__all__ = ["GATE", "open_gate", "shut_gate", "wants_sql", "is_gate"]

_UNSAMPLED, _PLAIN, _FLAGGED = 0, 1, 2

#: (the last context classified, its kind); replaced whole, never mutated
_last: tuple[Any, int] = (None, _PLAIN)


def _classify(ctx: Any) -> int:
    """What the listener would make of ``ctx``, apart from the live switches."""
    parent = ctx.get(_SPAN_KEY) if _SPAN_KEY is not None else trace.get_current_span(ctx)
    if parent is not None:
        parent_ctx = parent.get_span_context()
        if not parent_ctx.trace_flags & 1 and parent_ctx.is_valid:
            return _UNSAMPLED  # the listener returns before any flag matters
    return _FLAGGED if is_flagged(ctx) else _PLAIN


def _get(obj: Any, get_current: Any = otel_context.get_current,
         switches: Any = SWITCHES) -> bool:
    global _last
    try:
        ctx = get_current()
        last = _last
        if last[0] is ctx:
            kind = last[1]
        else:
            kind = _classify(ctx)
            _last = (ctx, kind)
        if kind and (switches.trace_sqlalchemy or (
                kind == _FLAGGED and switches.sql_trace_on_request)):
            return True
        return bool(obj.__dict__.get("_has_events", False))
    except Exception:
        return True


def _set(obj: Any, value: bool) -> None:
    # SQLAlchemy sets an instance's flag when someone listens on that instance
    obj.__dict__["_has_events"] = value


#: the descriptor installed as ``Engine._has_events`` / ``Dialect._has_events``
GATE = property(_get, _set, doc="SQLAlchemy's _has_events, per OpenTelemetry context")


def wants_sql(ctx: Any = None) -> bool:
    """Whether the listener would record a statement run in ``ctx`` (default: current)."""
    kind = _classify(otel_context.get_current() if ctx is None else ctx)
    return bool(kind and (SWITCHES.trace_sqlalchemy or (
        kind == _FLAGGED and SWITCHES.sql_trace_on_request)))


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
    _last = (None, _PLAIN)  # drop the reference to the last context
