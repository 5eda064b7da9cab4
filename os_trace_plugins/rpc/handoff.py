"""Keep the request's trace on work an endpoint hands off: the manual way.

The ``threads`` hook (:mod:`os_trace_plugins.threads`, loaded by ``setup()``
and ``opentelemetry-instrument``) does this for every ``concurrent.futures``
and futurist pool, thread, eventlet greenthread and oslo.service thread group
with no change in the service.  This module is the explicit form of the same
mechanism (:func:`os_trace_plugins.threads.bind`), for a hand-off the hook
does not know or a process where the hook is not loaded::

    from os_trace_plugins.rpc import handoff

    executor.submit(handoff.wrap(self._build), ctxt, instance)   # any executor
    pool = handoff.ContextExecutor(futurist.ThreadPoolExecutor())  # or wrap it once
    eventlet.spawn(handoff.wrap(self._build), ctxt, instance)
    handoff.spawn(self._build, ctxt, instance)                      # the same

``wrap`` is cheap (one context lookup at hand-off, attach/detach around the
call) and harmless with tracing off (the captured context is empty).  With
the hook loaded too, the task is bound twice to the same context, which
nests correctly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from os_trace_plugins.threads._carry import bind

__all__ = ["wrap", "ContextExecutor", "spawn"]

T = TypeVar("T")


def wrap(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to the caller's current trace context."""
    return bind(fn)


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
