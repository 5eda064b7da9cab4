"""Notice when a request flagged for SQL tracing becomes current.

Per-request SQL tracing (baggage ``os_trace.sql=1``) must work while
``trace_sqlalchemy`` is off, yet SQL tracing off must cost nothing.  The
obvious design, listeners always attached that check the baggage, fails the
second point: the listener body is cheap, but attaching any class-level
listener opens SQLAlchemy's ``_has_events`` gate for every engine, and the
generic event dispatch that follows costs more per statement than the check
itself (measured in docs/bench/sql.md: tens of percent of a SQLite query).

So the gate is opened only while a flagged request is *active* in the
process.  A flagged request becomes active when a context carrying the
baggage is attached (the WSGI edge and the RPC server attach the context
they extract), so the OpenTelemetry runtime context is wrapped: ``attach``
notes the token of a flagged context (one dictionary lookup per attach, not
per statement), ``detach`` forgets it, and the SQL toggle is told when the
first one starts and when the last one ends.  ``get_current`` is the original
bound method, so the hot path of every other OpenTelemetry call is untouched.

While one flagged request is active, statements of other requests of the
same process pay the per-context gate's check (:mod:`.gate`: a few reads of a
cached answer per statement) but not SQLAlchemy's event dispatch, and get no
span.  A flagged
context that is attached and never detached keeps the gate open: a cost, not
a correctness problem.  If the runtime context cannot be wrapped (another
OpenTelemetry version), the gate stays open whenever per-request tracing is
permitted: correct, slower.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context

from os_trace_plugins import _safety
from os_trace_plugins.db.listeners import _BAGGAGE_KEY, SQL_BAGGAGE_KEY, is_flagged

__all__ = ["FlaggedRequestWatch", "WATCH"]


class _WatchingRuntimeContext:
    """Delegates to the original runtime context; watches attach/detach."""

    def __init__(self, inner: Any, watch: FlaggedRequestWatch) -> None:
        self.inner = inner
        self.get_current = inner.get_current  # the hot path: no extra frame
        self._attach = inner.attach
        self._detach = inner.detach
        self._watch = watch

    def attach(self, context: Any) -> Any:
        token = self._attach(context)
        try:
            entries = context.get(_BAGGAGE_KEY) if _BAGGAGE_KEY is not None else None
            if entries is not None and entries.get(SQL_BAGGAGE_KEY) == "1" \
                    and self._watch.enabled:
                self._watch.started(token)
            elif _BAGGAGE_KEY is None and self._watch.enabled and is_flagged(context):
                self._watch.started(token)  # pragma: no cover - other API versions
        except Exception as exc:
            _safety.report_failure("watching context attach", exc)
        return token

    def detach(self, token: Any) -> None:
        try:
            self._detach(token)
        finally:
            watch = self._watch
            if watch.active and id(token) in watch.active:
                _safety.safe_call("watching context detach", watch.ended, token)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class FlaggedRequestWatch:
    """Counts the flagged contexts currently attached, calls back on 0 <-> 1."""

    def __init__(self) -> None:
        #: id(token) -> token (Tokens are unhashable; the value keeps the id unique)
        self.active: dict[int, Any] = {}
        self.enabled = False
        self.wrapped = False
        self._on_change: Callable[[], None] = lambda: None
        self._lock = threading.Lock()
        self._wrapper: _WatchingRuntimeContext | None = None

    @property
    def any_active(self) -> bool:
        return bool(self.active) or (self.enabled and not self.wrapped)

    def start(self, on_change: Callable[[], None]) -> None:
        """Begin watching (idempotent); ``on_change`` runs when activity flips."""
        with self._lock:
            self._on_change = on_change
            self.enabled = True
            if self.wrapped:
                return
            runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
            if runtime is None or not hasattr(runtime, "attach"):
                return  # unknown API: any_active stays True while enabled
            if isinstance(runtime, _WatchingRuntimeContext):
                runtime._watch = self
                self._wrapper = runtime
            else:
                self._wrapper = _WatchingRuntimeContext(runtime, self)
                setattr(otel_context, "_RUNTIME_CONTEXT", self._wrapper)  # noqa: B010
            self.wrapped = True

    def stop(self) -> None:
        """Stop watching; unwrap unless someone wrapped the runtime after us."""
        with self._lock:
            self.enabled = False
            self.active.clear()
            wrapper = self._wrapper
            if self.wrapped and isinstance(wrapper, _WatchingRuntimeContext):
                if getattr(otel_context, "_RUNTIME_CONTEXT", None) is wrapper:
                    inner: Any = getattr(wrapper, "inner")  # noqa: B009
                    setattr(otel_context, "_RUNTIME_CONTEXT", inner)  # noqa: B010
            self.wrapped = False
            self._wrapper = None

    def started(self, token: Any) -> None:
        first = not self.active
        self.active[id(token)] = token
        if first:
            self._on_change()

    def ended(self, token: Any) -> None:
        if self.active.pop(id(token), None) is not None and not self.active:
            self._on_change()


WATCH = FlaggedRequestWatch()
