"""oslo.service looping calls: the ticks of a loop started inside a request.

A looping call started while a request runs is carried like any other
hand-off (its loop body runs on a futurist worker or a greenthread we bind).
Left at that, every later tick of a loop that outlives the request would be
put into that request's trace, forever.  The rule here:

* a tick runs in the starter's context while the starter's span is still
  recording (not ended): a wait-for-boot loop the request waits on, the
  common case in nova and ironic, stays in the request's trace;
* once that span has ended (or when it never recorded: an unsampled request,
  baggage without a span), the loop drops the context after the tick that
  is running, and later ticks start clean, each a trace of its own decided
  by the sampler, like a periodic task.

The check is ``span.is_recording()`` of the public API (the SDK's span stops
recording when it ends), made once per tick, between ticks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import context, trace
from opentelemetry.context import Context

from os_trace_plugins.threads._carry import EMPTY

__all__ = ["start_wrapper", "Ticks"]


class Ticks:
    """The loop's ``idle_for`` function, deciding the next tick's context."""

    __slots__ = ("_idle_for", "_span", "_dropped")

    def __init__(self, idle_for: Callable[..., Any], ctx: Context) -> None:
        self._idle_for = idle_for
        self._span = trace.get_current_span(ctx)
        self._dropped = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        idle = self._idle_for(*args, **kwargs)
        if not self._dropped and not self._span.is_recording():
            self._dropped = True
            # detached with the whole loop by the Bound that carried it here
            context.attach(EMPTY)
        return idle

    def __getattr__(self, name: str) -> Any:
        return getattr(self._idle_for, name)


def start_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
    """``LoopingCallBase._start(idle_for, ...)``: wrap ``idle_for`` in :class:`Ticks`."""
    ctx = context.get_current()
    if ctx:
        if args:
            args = (Ticks(args[0], ctx),) + args[1:]
        elif "idle_for" in kwargs:
            kwargs = {**kwargs, "idle_for": Ticks(kwargs["idle_for"], ctx)}
    return wrapped(*args, **kwargs)
