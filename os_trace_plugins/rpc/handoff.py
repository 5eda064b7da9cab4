"""Keep the request's trace on work an endpoint hands off.

The OpenTelemetry context lives in a ``contextvars`` variable.  Neither
``concurrent.futures`` nor futurist executors copy it into the worker thread,
and an eventlet greenthread starts with an empty context too (greenlet gives
each greenlet its own), so a span started by handed-off work would become a
new root.  Capture the context at hand-off time::

    from os_trace_plugins.rpc import handoff

    executor.submit(handoff.wrap(self._build), ctxt, instance)   # any executor
    pool = handoff.ContextExecutor(futurist.ThreadPoolExecutor())  # or wrap it once
    eventlet.spawn(handoff.wrap(self._build), ctxt, instance)
    handoff.spawn(self._build, ctxt, instance)                      # the same

``wrap`` is cheap (one context lookup at hand-off, attach/detach around the
call) and harmless with tracing off (the captured context is empty).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from opentelemetry import context as otel_context

__all__ = ["wrap", "ContextExecutor", "spawn"]

T = TypeVar("T")


def wrap(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to the caller's current trace context."""
    ctx = otel_context.get_current()

    @functools.wraps(fn)
    def in_context(*args: Any, **kwargs: Any) -> T:
        token = otel_context.attach(ctx)
        try:
            return fn(*args, **kwargs)
        finally:
            otel_context.detach(token)

    return in_context


class ContextExecutor:
    """Wrap a ``concurrent.futures``-style executor so submitted work keeps the trace."""

    def __init__(self, executor: Any) -> None:
        self._executor = executor

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return self._executor.submit(wrap(fn), *args, **kwargs)

    def map(self, fn: Callable[..., T], *iterables: Iterable[Any],
            **kwargs: Any) -> Iterator[T]:
        return self._executor.map(wrap(fn), *iterables, **kwargs)  # type: ignore[no-any-return]

    def shutdown(self, *args: Any, **kwargs: Any) -> Any:
        return self._executor.shutdown(*args, **kwargs)

    def __enter__(self) -> ContextExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(wait=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._executor, name)


def spawn(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``eventlet.spawn`` that keeps the trace (needs eventlet)."""
    import eventlet

    return eventlet.spawn(wrap(fn), *args, **kwargs)
