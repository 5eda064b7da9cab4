"""Runtime on/off: listeners attached to the Engine class only while wanted.

Listening on the ``sqlalchemy.engine.Engine`` *class* reaches every engine of
the process, those that exist already (their dispatch reads the class-level
listener collection at each event) and those created later, including the
``sync_engine`` behind every ``AsyncEngine`` and the engines oslo.db's
enginefacade builds: no service code is needed.

The listeners are attached while SQL spans can be wanted, that is while
``trace_sqlalchemy`` is on or ``sql_trace_on_request`` permits per-request
tracing, and removed otherwise, so with both off SQLAlchemy runs exactly as
if we were not installed.  The switches are followed through
:data:`~os_trace_plugins._switches.SWITCHES` (``conf.mutate_config_files()``,
SIGHUP, or :func:`set_sql_tracing` from code).

On removal any span still open is ended (marked ``os_trace.sql.cut_short``)
so none is left unended.  SQLAlchemy documents that listener registration is a
configuration step, not to be run while the same event is being dispatched:
a statement caught exactly mid-dispatch in another thread at the moment of
the switch can fail with "deque mutated during iteration".  The switch is an
operator action (seconds of incident time, not per request), so the window
is tiny, but see docs/sql.md.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from opentelemetry import trace
from sqlalchemy import event
from sqlalchemy.engine import Engine

from os_trace_plugins._switches import SWITCHES
from os_trace_plugins._version import __version__
from os_trace_plugins.db import attributes
from os_trace_plugins.db.listeners import Listeners

__all__ = ["SQLToggle", "TOGGLE", "set_sql_tracing", "reset"]

LOG = logging.getLogger(__name__)

_EVENTS: tuple[tuple[str, dict[str, Any]], ...] = (  # removal order: stop new spans first, then the ones that end them
    ("before_cursor_execute", {"retval": True}),
    ("after_cursor_execute", {}),
    ("handle_error", {}),
    ("rollback", {}),
)


class SQLToggle:
    """Owns the class-level listeners and attaches them as the switches say."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.listeners: Listeners | None = None
        self.attached = False
        self._subscribed = False

    @property
    def installed(self) -> bool:
        return self.listeners is not None

    def install(self, tracer: trace.Tracer) -> None:
        """Follow the switches with listeners that use ``tracer``."""
        with self._lock:
            self._detach()
            self.listeners = Listeners(tracer)
            if not self._subscribed:
                SWITCHES.subscribe("trace_sqlalchemy", self._on_switch)
                SWITCHES.subscribe("sql_trace_on_request", self._on_switch)
                SWITCHES.subscribe("sql_max_statement_length",
                                   attributes.clear_statement_caches)
                self._subscribed = True
            self.apply()

    def uninstall(self) -> None:
        """Detach and stop following the switches."""
        with self._lock:
            if self._subscribed:
                SWITCHES.unsubscribe("trace_sqlalchemy", self._on_switch)
                SWITCHES.unsubscribe("sql_trace_on_request", self._on_switch)
                SWITCHES.unsubscribe("sql_max_statement_length",
                                     attributes.clear_statement_caches)
                self._subscribed = False
            self._detach()
            self.listeners = None

    @staticmethod
    def wanted() -> bool:
        return bool(SWITCHES.trace_sqlalchemy or SWITCHES.sql_trace_on_request)

    def apply(self) -> None:
        """Attach or detach to match the current switches."""
        with self._lock:
            if self.listeners is None:
                return
            if self.wanted():
                self._attach()
            else:
                self._detach()

    def _on_switch(self, old: Any, new: Any) -> None:
        self.apply()
        LOG.info("os_trace_plugins: SQL listeners %s (trace_sqlalchemy=%s, "
                 "sql_trace_on_request=%s)", "attached" if self.attached else "detached",
                 SWITCHES.trace_sqlalchemy, SWITCHES.sql_trace_on_request)

    def _attach(self) -> None:
        if self.attached or self.listeners is None:
            return
        done = []
        try:
            for name, kw in _EVENTS:
                event.listen(Engine, name, getattr(self.listeners, name), **kw)
                done.append(name)
        except Exception:
            for name in done:
                event.remove(Engine, name, getattr(self.listeners, name))
            raise
        self.attached = True

    def _detach(self) -> None:
        if not self.attached or self.listeners is None:
            return
        self.attached = False
        for name, _ in _EVENTS:
            fn = getattr(self.listeners, name)
            if event.contains(Engine, name, fn):
                event.remove(Engine, name, fn)
        cut = self.listeners.end_all("tracing switched off")
        if cut:
            LOG.info("os_trace_plugins: %d SQL span(s) of running statements ended "
                     "early because SQL tracing was switched off", cut)


TOGGLE = SQLToggle()


def set_sql_tracing(on: bool) -> None:
    """Switch SQL spans on or off for every engine of the process, from code.

    Same effect as flipping ``[profiler] trace_sqlalchemy`` and sending SIGHUP.
    Works before :func:`os_trace_plugins.setup` too (spans then go to the
    global tracer provider).
    """
    with TOGGLE._lock:
        if not TOGGLE.installed:
            TOGGLE.install(trace.get_tracer("os_trace_plugins.sqlalchemy", __version__))
        SWITCHES.set("trace_sqlalchemy", bool(on))
        TOGGLE.apply()


def reset() -> None:
    """Detach everything (tests, shutdown)."""
    TOGGLE.uninstall()
