"""Carry an OpenTelemetry context into work run on another thread or greenthread.

The context lives in a ``contextvars`` variable, and neither a new thread, a
new greenlet nor a pool's worker inherits it: work handed off inside a
request would start a new trace.  :func:`bind` captures the context once, at
hand-off, and :class:`Bound` attaches it around the call and detaches it in
``finally``, so a reused worker starts its next task clean.

``Bound`` also tells :mod:`os_trace_plugins._flagged` that a flagged request
(SQL asked for by the operator) is running while the task runs, so the SQL
hook stays attached for the driver work a conductor handed off even if the
RPC call that started it has already returned.

This module is the one place where a handed-off call is wrapped; the hook
(:mod:`._hook`) decides *where* (submit, spawn, start).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import context
from opentelemetry.context import Context

from os_trace_plugins import _flagged, _safety

__all__ = ["Bound", "bind", "EMPTY"]

#: the context of code outside any trace (no span, no baggage)
EMPTY = Context()


class Bound:
    """``fn`` that runs in ``ctx``: attach before, detach in ``finally``.

    A plain object rather than a closure with ``functools.wraps``: creating
    one is a slot assignment (binding happens on every submit), and
    attributes such as ``__name__`` are forwarded to ``fn`` for the loggers
    and statistics of executors that name the callable.
    """

    __slots__ = ("fn", "ctx")

    def __init__(self, fn: Callable[..., Any], ctx: Context) -> None:
        self.fn = fn
        self.ctx = ctx

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        ctx = self.ctx
        token = context.attach(ctx)
        flagged = False
        if ctx:
            flagged = _safety.safe_call("threads (flagged enter)", _flagged.enter, ctx,
                                        default=False)
        try:
            return self.fn(*args, **kwargs)
        finally:
            if flagged:
                _safety.safe_call("threads (flagged leave)", _flagged.leave, flagged)
            context.detach(token)

    @property
    def __wrapped__(self) -> Callable[..., Any]:
        return self.fn

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fn, name)

    def __repr__(self) -> str:
        return f"<bound to the trace context: {self.fn!r}>"


def bind(fn: Callable[..., Any], ctx: Context | None = None) -> Bound:
    """``fn`` bound to ``ctx`` (default: the caller's current context).

    Binding a :class:`Bound` of the same context again returns it unchanged,
    so two of our patches on one call path (``eventlet.spawn_n`` and
    ``eventlet.greenthread.spawn_n`` are one function under two names) cost
    one attach.
    """
    if ctx is None:
        ctx = context.get_current()
    if type(fn) is Bound and fn.ctx is ctx:
        return fn
    return Bound(fn, ctx)
