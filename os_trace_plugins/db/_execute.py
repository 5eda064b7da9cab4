"""The statement wrapper: one CLIENT span around each cursor execute.

SQLAlchemy hands every cursor execute to the dialect's public
``Dialect.do_execute`` / ``do_executemany`` / ``do_execute_no_params``
(documented as the dialect's implementation of ``cursor.execute``), whatever
the engine carries: listeners of its own (oslo.db's enginefacade), none, an
``AsyncEngine``'s ``sync_engine``.  :mod:`._toggle` wraps those methods with
:class:`Executor`'s wrappers only while SQL tracing is wanted, so at rest no
code of ours runs for any statement of any engine.

The span is started as a child of the current context and kept on
SQLAlchemy's ExecutionContext while the cursor runs (never made current,
never on a thread-local stack); it ends when the call returns or raises (an
error gets status ERROR, ``error.type`` and an exception event, from the
driver's own exception, which then propagates unchanged).  ``executemany``
and insertmanyvalues batches get ``db.operation.batch.size``.  A wrapped call
already inside one of our spans (a dialect's ``do_executemany`` calling its
base class) is passed straight through.

Whether a statement gets a span is :func:`.gate.wanted` for its context: the
switches, ``sql_root_spans`` outside any trace, and inside a trace the
configured sampler (asked once per context).  Our work runs under the safety
guard; the host's call is made outside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from os_trace_plugins import _safety
from os_trace_plugins._errors import record_error
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.db import _gate as gate
from os_trace_plugins.db._attributes import SLOT as _INFO
from os_trace_plugins.db._attributes import engine_info

__all__ = ["Executor", "MAX_PARAMETERS"]

#: parameters recorded per statement at most (a batch flattened by
#: insertmanyvalues can carry thousands)
MAX_PARAMETERS = 64

_SPAN = "_os_trace_span"  # on the ExecutionContext: the span of its running cursor call


def _parameters(span: Any, parameters: Any, executemany: bool, context: Any) -> None:
    """db.query.parameter.<key>: bound names where SQLAlchemy compiled them."""
    insertmany = getattr(context, "execute_style", None) is _insertmanyvalues()
    if executemany and not insertmany:
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


def _insertmanyvalues() -> Any:
    from sqlalchemy.engine.interfaces import ExecuteStyle  # imported by the service

    return ExecuteStyle.INSERTMANYVALUES


def _batch_size(parameters: Any, context: Any) -> int:
    """Rows in this cursor call (insertmanyvalues flattens a batch into one row)."""
    if getattr(context, "execute_style", None) is _insertmanyvalues():
        rows = context.compiled_parameters
        per_row = len(rows[0]) if rows and rows[0] else 0
        return max(1, len(parameters) // per_row) if per_row else len(rows)
    return len(parameters) if parameters is not None else 0


Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


class Executor:
    """The wrappers of one tracer for the three ``do_execute*`` methods."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer
        #: do_execute(cursor, statement, parameters, context)
        self.do_execute = self._build(has_params=True)
        #: do_executemany(cursor, statement, parameters, context)
        self.do_executemany = self._build(has_params=True)
        #: do_execute_no_params(cursor, statement, context)
        self.do_execute_no_params = self._build(has_params=False)

    def _build(self, has_params: bool) -> Wrapper:
        begin = self._begin
        slot = 3 if has_params else 2
        get_current = otel_context.get_current
        kind_of = gate.kind_of
        switches = SWITCHES
        record, root, flag = gate.RECORD, gate.ROOT, gate.FLAG

        def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
            started = None
            try:
                # gate.wanted(gate.kind_of(ctx)), inlined: the cached answer first
                ctx = get_current()
                last = gate._last
                kind = last[1] if last[0] is ctx else kind_of(ctx)
                where = kind & 3
                if (where == record or (where == root and switches.sql_root_spans)) and (
                        switches.trace_sqlalchemy
                        or (kind & flag and switches.sql_trace_on_request)):
                    context = args[slot] if len(args) > slot else kwargs.get("context")
                    if context is not None:
                        started = begin(ctx, args, context, has_params)
            except Exception as exc:
                _safety.report_failure("SQL span start", exc)
            if started is None:
                return wrapped(*args, **kwargs)
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                _safety.safe_call("SQL span end", _end, started, context, exc)
                raise
            _safety.safe_call("SQL span end", _end, started, context, None)
            return result

        return wrapper

    def _begin(self, ctx: Any, args: tuple[Any, ...], context: Any,
               has_params: bool) -> Any:
        """The span for this wanted cursor call, or None (nested, dropped)."""
        if getattr(context, _SPAN, None) is not None:
            return None  # a dialect's override calling its base: one span
        engine = context.root_connection.engine
        info = getattr(engine, _INFO, None)
        if info is None:
            info = engine_info(engine)
        statement = args[1]
        entry = info.entries.get(statement)
        if entry is None:
            entry = info.entry(statement)
        name, attrs = entry
        span = self.tracer.start_span(name, ctx, SpanKind.CLIENT, attrs)
        if not span.is_recording():  # the SDK's own sampling said no
            span.end()
            return None
        parameters = args[2] if has_params and len(args) > 2 else None
        executemany = bool(getattr(context, "executemany", False))
        if executemany:
            span.set_attribute("db.operation.batch.size", _batch_size(parameters, context))
        if has_params and SWITCHES.trace_sqlalchemy_parameters:
            _parameters(span, parameters, executemany, context)
        setattr(context, _SPAN, span)
        return span


def _end(span: Any, context: Any, exc: BaseException | None) -> None:
    setattr(context, _SPAN, None)
    if exc is not None and isinstance(exc, Exception):
        record_error(span, exc)
    span.end()
