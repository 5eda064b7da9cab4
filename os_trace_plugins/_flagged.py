"""Requests flagged for SQL tracing: the one owner of the ``os_trace.sql`` flag.

An operator asks for the SQL of one request by signing it with the ``sql``
flag (``os-trace sign --sql``); the API edge then puts the baggage entry
``os_trace.sql=1`` in the request's context, and it travels with the trace
through RPC.  SQL tracing off must still cost nothing, so the SQL hook needs
to know when such a request is *running* in this process, not only what each
statement's context says.

Our own WSGI middleware and RPC server hooks are the only producers of a
flagged context in a process: each calls :func:`enter` with the context it
attaches and :func:`leave` with what :func:`enter` returned, once the request
is over (the threads hook does the same around work a flagged request
hands to a worker, which runs while the request waits).  The SQL hook
:func:`subscribe`\\ s and is called when the number of running flagged
requests goes from 0 to 1 and back.  No process-wide wrapper:
a flagged context attached by some other code is not seen here (documented).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from opentelemetry import baggage

from os_trace_plugins import _safety

__all__ = ["SQL_BAGGAGE_KEY", "is_flagged", "enter", "leave", "running", "subscribe",
           "unsubscribe", "reset"]

#: the baggage entry of a request whose SQL statements are to be traced
SQL_BAGGAGE_KEY = "os_trace.sql"

_lock = threading.Lock()
_running = 0
_listeners: list[Callable[[bool], None]] = []


def is_flagged(ctx: Any) -> bool:
    """Whether the OpenTelemetry context ``ctx`` asks for SQL spans."""
    return baggage.get_baggage(SQL_BAGGAGE_KEY, ctx) == "1"


def running() -> int:
    """How many flagged requests are running in this process now."""
    return _running


def _notify(active: bool) -> None:
    for listener in list(_listeners):
        _safety.safe_call("flagged-request listener", listener, active)


def enter(ctx: Any) -> bool:
    """Note the start of a request running in ``ctx``; True if it is flagged.

    Pass the returned value to :func:`leave` when the request ends.  Cheap
    for an unflagged context (one baggage lookup).
    """
    global _running
    if not is_flagged(ctx):
        return False
    with _lock:
        _running += 1
        first = _running == 1
    if first:
        _notify(True)
    return True


def leave(flagged: bool) -> None:
    """Note the end of a request :func:`enter` reported as flagged."""
    global _running
    if not flagged:
        return
    with _lock:
        _running = max(0, _running - 1)
        last = _running == 0
    if last:
        _notify(False)


def subscribe(listener: Callable[[bool], None]) -> None:
    """Call ``listener(active)`` when flagged requests start (True) or all end."""
    with _lock:
        if listener not in _listeners:
            _listeners.append(listener)


def unsubscribe(listener: Callable[[bool], None]) -> None:
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def reset() -> None:
    """Forget running requests (tests)."""
    global _running
    with _lock:
        _running = 0
