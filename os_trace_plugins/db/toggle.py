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
process (no listener is called at all).  An engine that carries listeners of
its own (every engine of oslo.db's enginefacade: its ``commit``/``rollback``
listeners set the instance flag) makes SQLAlchemy dispatch anyway; ours are
in that dispatch and return after one attribute check (``Listeners.active``),
measured in docs/sql.md.  Attached, the class flags become the per-context
gate of :mod:`.gate`: it answers, per read, the instance's own flag or
whether the current context gets a span (the configured sampler asked once
per context), so a statement that gets none skips SQLAlchemy's dispatch on a
plain engine.  Installing or removing the descriptor is one class attribute
assignment, atomic: no statement can fail because of it (stress-tested).
The gate is never narrowed while someone else has class-level Engine or
Dialect listeners (they would be silenced): that class then keeps the plain
``True`` flag.

Attached while SQL spans are wanted: ``trace_sqlalchemy`` on, or
``sql_trace_on_request`` permitting per-request tracing *and* a request
flagged with the baggage ``os_trace.sql=1`` running in the process (our WSGI
and RPC hooks report those to :mod:`os_trace_plugins._flagged`, which calls
us on 0 -> 1 and 1 -> 0).  The switches are followed through
:data:`~os_trace_plugins._switches.SWITCHES` (SIGHUP, or
:func:`os_trace_plugins.db.set_sql_tracing`).  When it detaches, spans of
statements still running are ended (``os_trace.sql.cut_short``).  Every
entry point that runs on a switch, a flagged request or an import never
raises: failures are logged once and the previous state is kept.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from opentelemetry import trace
from sqlalchemy import event
from sqlalchemy.engine import Dialect, Engine

from os_trace_plugins import _flagged, _safety
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.db import attributes, gate
from os_trace_plugins.db.listeners import Listeners

__all__ = ["SQLToggle", "TOGGLE", "reset"]

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

    def install(self, tracer: trace.Tracer, provider: Any = None) -> None:
        """Follow the switches with listeners that use ``tracer``; the sampler
        of ``provider`` (None: the global provider) decides per context."""
        with self._lock:
            self._detach()
            self._unregister()
            gate.set_provider(provider)
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
                _flagged.subscribe(self._on_flagged)
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
                _flagged.unsubscribe(self._on_flagged)
                self._subscribed = False
            self._detach()
            self._unregister()
            self.listeners = None

    @staticmethod
    def wanted() -> bool:
        return bool(SWITCHES.trace_sqlalchemy or (
            SWITCHES.sql_trace_on_request and _flagged.running() > 0))

    def apply(self) -> None:
        """Attach or detach to match the current switches; never raises."""
        with self._lock:
            if self.listeners is None:
                return
            try:
                if self.wanted():
                    if not self.attached:
                        self._attach()
                else:
                    self._detach()
            except Exception as exc:
                _safety.report_failure("switching SQL tracing", exc)

    def _on_flagged(self, active: bool) -> None:
        self.apply()

    def _on_switch(self, old: Any, new: Any) -> None:
        with self._lock:
            if self.listeners is None:
                return
            self.apply()
        LOG.info("os_trace_plugins: SQL listeners %s (trace_sqlalchemy=%s, "
                 "sql_trace_on_request=%s)", "active" if self.attached else "inactive",
                 SWITCHES.trace_sqlalchemy, SWITCHES.sql_trace_on_request)

    def _register(self) -> None:
        """Register the listeners once (install time) and remember which are ours."""
        if self._registered or self.listeners is None:
            return
        before = _class_listeners() or []
        done = []
        try:
            for name, kw in _EVENTS:
                event.listen(Engine, name, getattr(self.listeners, name), **kw)
                done.append(name)
        except Exception:
            for name in done:
                event.remove(Engine, name, getattr(self.listeners, name))
            raise
        self._ours = ({id(fn) for fn in _class_listeners() or []}
                      - {id(fn) for fn in before})
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
            gate.open_gate(cls, foreign=not plain_false and self._foreign(cls))
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

    def _foreign(self, cls: type) -> bool:
        """Whether others listen on ``cls`` class-wide (unknown counts as yes)."""
        found = _class_listeners((cls,))
        return found is None or any(id(fn) not in self._ours for fn in found)

    def _close_gate(self) -> None:
        """Let SQLAlchemy skip dispatch again, unless someone else listens class-wide."""
        for cls in (Engine, Dialect):
            foreign = self._foreign(cls)
            if foreign:
                LOG.debug("os_trace_plugins: other class-level SQLAlchemy listeners on "
                          "%s; its gate stays open (our listeners return at once)",
                          cls.__name__)
            gate.shut_gate(cls, foreign)


def _class_listeners(classes: tuple[type, ...] = (Engine, Dialect)) -> list[Any] | None:
    """Every class-level listener on Engine (connection events) and Dialect.

    Reads SQLAlchemy's private ``dispatch._event_names`` and ``_clslevel``
    (no public API lists listeners); None when they cannot be read (logged
    once), which the callers treat as "someone else listens": the gate then
    stays plainly open, never silencing another library.
    """
    found: list[Any] = []
    try:
        for cls in classes:
            dispatch = cls.dispatch  # type: ignore[attr-defined]
            for name in dispatch._event_names:
                clslevel = getattr(getattr(dispatch, name, None), "_clslevel", None)
                if clslevel is not None:
                    found.extend(clslevel.get(cls, ()))
    except Exception as exc:
        _safety.report_failure("listing SQLAlchemy class-level listeners", exc)
        return None
    return found


TOGGLE = SQLToggle()


def reset() -> None:
    """Detach everything (tests, shutdown)."""
    TOGGLE.uninstall()
