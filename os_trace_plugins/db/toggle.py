"""Runtime on/off for every engine of the process, without racing SQLAlchemy.

Listening on the ``sqlalchemy.engine.Engine`` *class* reaches every engine of
the process, those that exist already (their dispatch reads the class-level
listener collection at each event) and those created later, including the
``sync_engine`` behind every ``AsyncEngine`` and the engines oslo.db's
enginefacade builds: no service code is needed.

Why not ``event.listen`` / ``event.remove`` on every switch: SQLAlchemy keeps
class-level listeners in a deque that each statement iterates, and documents
that registration must not run while the event is dispatched.  Removing a
listener while another thread is inside the loop makes that thread's query
fail with "RuntimeError: deque mutated during iteration" (a stress test of
4 query threads and 400 switches broke 167 queries).  A SIGHUP must never
break a query, so the listeners are registered once, at install (service
start, a configuration step as SQLAlchemy intends), and the switch works on
SQLAlchemy's *own* gate: the private ``_has_events`` flags that every
``Connection`` checks before dispatching any event (``Engine._has_events``
for connection events, ``Dialect._has_events`` for ``handle_error``; relied
upon for SQLAlchemy 2.0 and 2.1).

Detached, both class flags are a plain ``False``: a statement on an engine
without listeners of its own runs the exact code path of an uninstrumented
process (no listener is called at all); an engine that carries its own
instance-level listeners (oslo.db's, for instance) calls ours, which return
after one attribute check.  Attached, the class flags become the per-context
gate of :mod:`.gate`, a descriptor that answers, per read, the instance's own
flag or whether the current OpenTelemetry context would get a span (not
inside an unsampled trace; ``trace_sqlalchemy`` on, or the baggage flag
permitted), so a statement in an unsampled trace skips SQLAlchemy's event
dispatch as well.  Installing or removing the descriptor is one class
attribute assignment, atomic: no statement can fail because of it.  The gate
is never narrowed while someone else has class-level Engine or Dialect
listeners (they would be silenced): that class then keeps the plain ``True``
flag, attached or not, and ours return after the same check.

Attached while SQL spans are wanted: ``trace_sqlalchemy`` on, or
``sql_trace_on_request`` permitting per-request tracing *and* a request
flagged with the baggage ``os_trace.sql=1`` being active in the process
(:mod:`.watch` notices those; the gate and the listener then check the
baggage of each statement's context).  The switches are followed through
:data:`~os_trace_plugins._switches.SWITCHES` (``conf.mutate_config_files()``,
SIGHUP, or :func:`set_sql_tracing` from code).  When it detaches, spans of
statements still running are ended (marked ``os_trace.sql.cut_short``) so
none is left unended.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from opentelemetry import trace
from sqlalchemy import event
from sqlalchemy.engine import Dialect, Engine

from os_trace_plugins._switches import SWITCHES
from os_trace_plugins._version import __version__
from os_trace_plugins.db import attributes, gate
from os_trace_plugins.db.listeners import Listeners
from os_trace_plugins.db.watch import WATCH

__all__ = ["SQLToggle", "TOGGLE", "set_sql_tracing", "reset"]

LOG = logging.getLogger(__name__)

# removal order: stop new spans first, then the ones that end them
_EVENTS: tuple[tuple[str, dict[str, Any]], ...] = (
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
        self._registered = False
        self._ours: set[int] = set()
        self._subscribed = False

    @property
    def installed(self) -> bool:
        return self.listeners is not None

    def install(self, tracer: trace.Tracer) -> None:
        """Follow the switches with listeners that use ``tracer``."""
        with self._lock:
            self._detach()
            self._unregister()
            self.listeners = Listeners(tracer)
            # registered now, at install (a configuration step, as SQLAlchemy
            # requires); the switches only ever flip the gate afterwards
            self._register()
            self._close_gate()
            if not self._subscribed:
                SWITCHES.subscribe("trace_sqlalchemy", self._on_switch)
                SWITCHES.subscribe("sql_trace_on_request", self._on_switch)
                SWITCHES.subscribe("sql_max_statement_length",
                                   attributes.clear_statement_caches)
                self._subscribed = True
            self._sync_watch()
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
            WATCH.stop()
            self._detach()
            self._unregister()
            self.listeners = None

    @staticmethod
    def wanted() -> bool:
        return bool(SWITCHES.trace_sqlalchemy or (
            SWITCHES.sql_trace_on_request and WATCH.any_active))

    def _sync_watch(self) -> None:
        if SWITCHES.sql_trace_on_request:
            WATCH.start(self.apply)
        else:
            WATCH.stop()

    def apply(self) -> None:
        """Attach or detach to match the current switches."""
        with self._lock:
            if self.listeners is None:
                return
            if self.wanted():
                if not self.attached:
                    self._attach()
            else:
                self._detach()

    def _on_switch(self, old: Any, new: Any) -> None:
        with self._lock:
            if self.listeners is None:
                return
            self._sync_watch()
            self.apply()
        LOG.info("os_trace_plugins: SQL listeners %s (trace_sqlalchemy=%s, "
                 "sql_trace_on_request=%s)", "active" if self.attached else "inactive",
                 SWITCHES.trace_sqlalchemy, SWITCHES.sql_trace_on_request)

    def _register(self) -> None:
        """Register the listeners once (install time) and remember which are ours."""
        if self._registered or self.listeners is None:
            return
        before = _class_listeners()
        done = []
        try:
            for name, kw in _EVENTS:
                event.listen(Engine, name, getattr(self.listeners, name), **kw)
                done.append(name)
        except Exception:
            for name in done:
                event.remove(Engine, name, getattr(self.listeners, name))
            raise
        self._ours = {id(fn) for fn in _class_listeners()} - {id(fn) for fn in before}
        self._registered = True

    def _unregister(self) -> None:
        if not self._registered or self.listeners is None:
            return
        self._close_gate()
        for name, _ in _EVENTS:
            fn = getattr(self.listeners, name)
            if event.contains(Engine, name, fn):
                event.remove(Engine, name, fn)
        self._registered = False
        self._ours = set()
        self._close_gate()  # event.remove leaves the flags set

    def _attach(self) -> None:
        self._register()
        if self.listeners is not None:
            self.listeners.active = True
        for cls in (Engine, Dialect):
            # a plain False flag means no foreign class-level listener: SQLAlchemy
            # sets it True on every listen, and _close_gate only writes False
            # after checking (saves the census at the start of each flagged request)
            plain_false = cls.__dict__.get("_has_events") is False
            gate.open_gate(cls, foreign=not plain_false and bool(self._foreign(cls)))
        self.attached = True

    def _detach(self) -> None:
        if not self.attached:
            return
        self.attached = False
        if self.listeners is not None:
            self.listeners.active = False
        self._close_gate()
        if self.listeners is not None:
            cut = self.listeners.end_all("tracing switched off")
            if cut:
                LOG.info("os_trace_plugins: %d SQL span(s) of running statements "
                         "ended early because SQL tracing was switched off", cut)

    def _foreign(self, cls: type) -> list[Any]:
        return [fn for fn in _class_listeners((cls,)) if id(fn) not in self._ours]

    def _close_gate(self) -> None:
        """Let SQLAlchemy skip dispatch again, unless someone else listens class-wide."""
        for cls in (Engine, Dialect):
            foreign = bool(self._foreign(cls))
            if foreign:
                LOG.debug("os_trace_plugins: other class-level SQLAlchemy listeners on "
                          "%s; its gate stays open (our listeners return at once)",
                          cls.__name__)
            gate.shut_gate(cls, foreign)


def _class_listeners(classes: tuple[type, ...] = (Engine, Dialect)) -> list[Any]:
    """Every class-level listener on Engine (connection events) and Dialect."""
    found: list[Any] = []
    for cls in classes:
        dispatch = cls.dispatch  # type: ignore[attr-defined]
        for name in dispatch._event_names:
            clslevel = getattr(getattr(dispatch, name, None), "_clslevel", None)
            if clslevel is not None:
                found.extend(clslevel.get(cls, ()))
    return found


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
