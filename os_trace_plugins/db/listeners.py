"""The SQLAlchemy cursor listeners: one CLIENT span per statement.

``before_cursor_execute`` starts the span as a child of the current span and
stores it on SQLAlchemy's ExecutionContext (never made current, never on a
thread-local stack, so threads, greenlets and asyncio tasks cannot mix
them up); ``after_cursor_execute`` ends it; ``handle_error`` ends it with
status ERROR, ``error.type`` and an exception event.  ``executemany`` is one
span with ``db.operation.batch.size``.

Cost discipline (a busy service runs thousands of statements a second):

* detached (SQL tracing not wanted), each listener returns after one
  attribute check: that is all an engine with listeners of its own (oslo.db's
  enginefacade puts some on every engine, so SQLAlchemy dispatches for it
  anyway) pays for ours at rest; a plain engine calls no listener at all;
* attached, a statement gets a span when :func:`.gate.wanted` says so for
  its context: ``trace_sqlalchemy`` on, or the baggage ``os_trace.sql=1``
  with ``sql_trace_on_request``; outside any trace only with
  ``sql_root_spans``; inside a trace the configured sampler is asked (once
  per context, :mod:`.gate`), and a DROP answer means no span to start;
* the span name and attributes come prebuilt from the per-engine and
  per-statement caches (:mod:`.attributes`); only parameters and the batch
  size are added per query, and only when the span records.

Every body runs under the safety guard; ``before_cursor_execute`` is
registered with ``retval=True`` (no SQLAlchemy wrapper frame) and always
hands back the statement and parameters it was given, unchanged.

A span whose statement never reaches ``after_cursor_execute`` or
``handle_error`` (another ``handle_error`` listener raised first, the
``skip_user_error_events`` option, an interrupt) is ended as abandoned when
the connection runs its next statement or rolls back, or when SQL tracing is
switched off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy.engine.interfaces import ExecuteStyle

from os_trace_plugins import _safety
from os_trace_plugins._errors import record_error
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.db import gate
from os_trace_plugins.db.attributes import SLOT as _INFO
from os_trace_plugins.db.attributes import engine_info

__all__ = ["Listeners", "MAX_PARAMETERS"]

LOG = logging.getLogger(__name__)

#: parameters recorded per statement at most (a batch flattened by
#: insertmanyvalues can carry thousands)
MAX_PARAMETERS = 64

_INSERTMANYVALUES = ExecuteStyle.INSERTMANYVALUES
_SPAN = "_os_trace_span"        # on the ExecutionContext: the open span
_LAST = "_os_trace_last_ctx"    # on the Connection: the context of its last span


def _parameters(span: Any, parameters: Any, executemany: bool, context: Any) -> None:
    """db.query.parameter.<key>: bound names where SQLAlchemy compiled them."""
    if executemany and getattr(context, "execute_style", None) is not _INSERTMANYVALUES:
        if not parameters:
            return
        parameters = parameters[0]  # the first row stands for the batch
    if isinstance(parameters, dict):
        items: Any = parameters.items()
    elif isinstance(parameters, (list, tuple)):
        names = getattr(getattr(context, "compiled", None), "positiontup", None)
        if names and len(names) == len(parameters):
            items = zip(names, parameters, strict=True)  # positional style, named statement
        else:
            items = enumerate(parameters)
    else:
        return
    for count, (key, value) in enumerate(items):
        if count >= MAX_PARAMETERS:
            break
        if not isinstance(value, (str, bool, int, float)):
            value = repr(value)
        if isinstance(value, str) and len(value) > 256:
            value = value[:256]
        span.set_attribute(f"db.query.parameter.{key}", value)


def _batch_size(parameters: Any, context: Any) -> int:
    """Rows in this cursor call (insertmanyvalues flattens a batch into one row)."""
    if getattr(context, "execute_style", None) is _INSERTMANYVALUES:
        rows = context.compiled_parameters
        per_row = len(rows[0]) if rows and rows[0] else 0
        return max(1, len(parameters) // per_row) if per_row else len(rows)
    return len(parameters)


class Listeners:
    """The listener functions of one tracer, and the spans they hold open."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer
        #: set by the toggle while SQLAlchemy's gate is open
        self.active = False
        #: id(ExecutionContext) -> span, for statements still running
        self.open: dict[int, Any] = {}
        self.before_cursor_execute = self._build_before()
        self.after_cursor_execute = self._build_after()
        self.handle_error = self._build_error()
        self.rollback = self._build_rollback()

    # -- the hot path --------------------------------------------------------
    def _build_before(self) -> Callable[..., tuple[Any, Any]]:
        get_current = otel_context.get_current
        kind_of = gate.kind_of
        wanted = gate.wanted
        start_span = self.tracer.start_span
        switches = SWITCHES
        open_spans = self.open
        client = SpanKind.CLIENT
        abandon = self._abandon
        me = self

        def before_cursor_execute(conn: Any, cursor: Any, statement: str,
                                  parameters: Any, context: Any,
                                  executemany: bool) -> tuple[Any, Any]:
            if not me.active:  # detached: the whole resting cost
                return statement, parameters
            try:
                ctx = get_current()
                if context is None or not wanted(kind_of(ctx), switches):
                    return statement, parameters
                last = getattr(conn, _LAST, None)
                if (last is not None and last is not context
                        and getattr(last, _SPAN, None) is not None):
                    abandon(last)
                engine = conn.engine
                info = getattr(engine, _INFO, None)
                if info is None:
                    info = engine_info(engine)
                entry = info.entries.get(statement)
                if entry is None:
                    entry = info.entry(statement)
                name, attrs = entry
                span = start_span(name, ctx, client, attrs)
                if not span.is_recording():  # the SDK's own sampling said no
                    span.end()
                    return statement, parameters
                if executemany:
                    span.set_attribute("db.operation.batch.size",
                                       _batch_size(parameters, context))
                if switches.trace_sqlalchemy_parameters:
                    _parameters(span, parameters, executemany, context)
                setattr(context, _SPAN, span)
                conn.__dict__[_LAST] = context
                open_spans[id(context)] = span
                if not me.active:  # switched off meanwhile: end_all may have run
                    abandon(context, error=False)
            except Exception as exc:
                _safety.report_failure("SQL before_cursor_execute", exc)
            return statement, parameters

        return before_cursor_execute

    def _build_after(self) -> Callable[..., None]:
        open_spans = self.open
        me = self

        def after_cursor_execute(conn: Any, cursor: Any, statement: str,
                                 parameters: Any, context: Any,
                                 executemany: bool) -> None:
            if not me.active:  # detached: end_all ended what was open
                return
            try:
                span = getattr(context, _SPAN, None)
                if span is None:
                    return
                setattr(context, _SPAN, None)
                if open_spans.pop(id(context), None) is not None:
                    span.end()
            except Exception as exc:
                _safety.report_failure("SQL after_cursor_execute", exc)

        return after_cursor_execute

    def _build_error(self) -> Callable[[Any], None]:
        open_spans = self.open

        def handle_error(exception_context: Any) -> None:
            try:
                context = exception_context.execution_context
                span = getattr(context, _SPAN, None) if context is not None else None
                if span is None:
                    return
                setattr(context, _SPAN, None)
                if open_spans.pop(id(context), None) is None:
                    return
                record_error(span, exception_context.original_exception)
                span.end()
            except Exception as exc:
                _safety.report_failure("SQL handle_error", exc)

        return handle_error

    def _build_rollback(self) -> Callable[[Any], None]:
        abandon = self._abandon
        me = self

        def rollback(conn: Any) -> None:
            if not me.active:
                return
            try:
                last = conn.__dict__.get(_LAST)
                if last is not None:
                    abandon(last)
            except Exception as exc:
                _safety.report_failure("SQL rollback", exc)

        return rollback

    # -- the safety net ----------------------------------------------------
    def _abandon(self, context: Any, error: bool = True) -> None:
        """End the span of ``context``: its statement never reported back
        (``error``), or tracing was switched off while it ran."""
        span = getattr(context, _SPAN, None)
        if span is None:
            return
        setattr(context, _SPAN, None)
        if self.open.pop(id(context), None) is None:
            return
        if span.is_recording():
            if error:
                span.set_attribute("error.type", "abandoned")
                span.set_status(Status(StatusCode.ERROR, "statement abandoned: its "
                                       "outcome was not reported"))
            else:
                span.set_attribute("os_trace.sql.cut_short", "tracing switched off")
        span.end()

    def end_all(self, reason: str) -> int:
        """End every span still open (tracing is being switched off)."""
        count = 0
        for key in list(self.open):
            span = self.open.pop(key, None)
            if span is None:
                continue
            if span.is_recording():
                span.set_attribute("os_trace.sql.cut_short", reason)
            span.end()
            count += 1
        return count
