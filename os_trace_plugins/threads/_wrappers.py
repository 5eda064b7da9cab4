"""The wrapt wrappers the ``threads`` hook puts on executors, threads and greenthreads.

Each captures the caller's context where the work is handed off (``submit``,
``spawn``, ``Thread.start``, ``GreenThread()``) and runs the work through
:class:`~os_trace_plugins.threads._carry.Bound`.  The host's call is made
outside any guard of ours; our own work before it is one ``get_current()``
and one small object.

Executor tasks are bound even when the captured context is empty: a pool's
worker thread may carry a context of its own (a peer instrumentation that
wraps ``Thread.run`` gives a worker the context of the submit that started
it), and only an explicit attach of the empty context keeps that out of an
unrelated task (docs/threads.md gives the cost).  A new thread or greenthread
starts empty anyway, so those are left alone when there is nothing to carry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from opentelemetry import context

from os_trace_plugins import _safety
from os_trace_plugins.threads._carry import Bound, bind

__all__ = ["submit_wrapper", "thread_start", "greenthread_init", "greenthread_main",
           "spawn_n_wrapper", "CONTEXT_ATTR", "Wrapped"]

#: where a GreenThread keeps the context captured when it was created
CONTEXT_ATTR = "_os_trace_context"

Wrapped = Callable[..., Any]

#: ``in_submit`` is True on a thread inside one of our executor wrappers: a
#: worker thread the executor starts there serves every later task of the
#: pool, so it must not take the first submitter's context as its own (each
#: task brings its own).  Checked by every start path: ``Thread.start``, and
#: under eventlet the ``GreenThread``/``spawn_n`` a monkey-patched
#: ``Thread.start`` or a green pool's worker goes through (else the worker
#: keeps the first request's context for life, and what runs on it outside a
#: task, a future's done-callback, joins that trace).  Set inline: a context
#: manager costs ~3x more.
_state = threading.local()


def submit_wrapper(index: int) -> Callable[[Wrapped, Any, tuple[Any, ...], dict[str, Any]],
                                            Any]:
    """Wrapper of an executor method whose positional ``args[index]`` is the task.

    Worker threads the executor starts during the call begin clean.
    """

    def wrapper(wrapped: Wrapped, instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        if len(args) > index:
            args = args[:index] + (bind(args[index]),) + args[index + 1:]
        previous = getattr(_state, "in_submit", False)
        _state.in_submit = True
        try:
            return wrapped(*args, **kwargs)
        finally:
            _state.in_submit = previous

    return wrapper


class _RunOnce:
    """Stands in for a thread's ``run`` once: restores it, runs it in ``ctx``.

    Set on the instance (not on the class), so a subclass that overrides
    ``run`` (``threading.Timer``, a service's own worker class) is carried
    too, and nothing of ours stays on the thread once it ran.
    """

    __slots__ = ("_thread", "_run", "_previous", "_ctx")

    def __init__(self, thread: Any, ctx: Any) -> None:
        self._thread = thread
        self._previous = thread.__dict__.get("run")
        self._run = thread.run
        self._ctx = ctx

    def restore(self) -> None:
        if self._previous is None:
            self._thread.__dict__.pop("run", None)
        else:
            self._thread.__dict__["run"] = self._previous

    def __call__(self) -> Any:
        _safety.safe_call("threads (restore run)", self.restore)
        return Bound(self._run, self._ctx)()


def _carry_into(thread: Any, ctx: Any) -> _RunOnce:
    carrier = _RunOnce(thread, ctx)
    thread.__dict__["run"] = carrier
    return carrier


def thread_start(wrapped: Wrapped, instance: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
    """``threading.Thread.start``: the new thread runs in the starter's context."""
    ctx = context.get_current()
    if not ctx or getattr(_state, "in_submit", False):
        return wrapped(*args, **kwargs)
    carrier = _safety.safe_call("threads (Thread.start)", _carry_into, instance, ctx)
    try:
        return wrapped(*args, **kwargs)
    except BaseException:
        if carrier is not None:  # never started: leave the thread as it was
            _safety.safe_call("threads (restore run)", carrier.restore)
        raise


def greenthread_init(wrapped: Wrapped, instance: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Any:
    """``GreenThread.__init__`` runs in the spawner: remember its context.

    One point for ``eventlet.spawn``, ``spawn_after``, ``GreenPool.spawn``
    and oslo.service's eventlet thread groups, whatever name they were called
    by.  Inside one of our executor wrappers it is a pool's worker being
    started (monkey-patched ``Thread.start`` ends here too): left empty, as
    :func:`thread_start` leaves a worker thread.
    """
    result = wrapped(*args, **kwargs)
    ctx = context.get_current()
    if ctx and not getattr(_state, "in_submit", False):
        instance.__dict__[CONTEXT_ATTR] = ctx
    return result


def greenthread_main(wrapped: Wrapped, instance: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Any:
    """``GreenThread.main`` runs the function in the new greenthread."""
    ctx = instance.__dict__.pop(CONTEXT_ATTR, None)
    if ctx is None:
        return wrapped(*args, **kwargs)
    return Bound(wrapped, ctx)(*args, **kwargs)


def spawn_n_wrapper(wrapped: Wrapped, instance: Any, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
    """``eventlet.spawn_n`` (a bare greenlet, no GreenThread): bind the function."""
    if args and not getattr(_state, "in_submit", False):
        ctx = context.get_current()
        if ctx:
            args = (bind(args[0], ctx),) + args[1:]
    return wrapped(*args, **kwargs)
