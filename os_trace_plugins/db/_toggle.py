"""Runtime on/off for every engine of the process, without racing SQLAlchemy.

While SQL spans are wanted, the dialects' public ``do_execute``,
``do_executemany`` and ``do_execute_no_params`` methods are wrapped (core
:class:`~os_trace_plugins._patching.Patch`, wrapt); otherwise they are not:
an idle process runs SQLAlchemy's exact uninstrumented code path on every
engine, including oslo.db's enginefacade engines, whose own listeners make
SQLAlchemy dispatch events for each statement (class-level event listeners
of ours would run in that dispatch; these wrappers are not in it).

Why not SQLAlchemy's events and ``event.listen`` / ``event.remove`` on each
switch: SQLAlchemy keeps listeners in deques that each statement iterates;
changing one while another thread dispatches breaks that thread's statement
("RuntimeError: deque mutated during iteration").  Wrapping and unwrapping a
method is one class attribute assignment, atomic: a statement already inside
the old method finishes in it, the next one sees the new one.  A span started
just before a switch-off ends when its call returns, as always.

The wrapped methods: ``DefaultDialect``'s three, plus the ``do_executemany``
overrides of the bundled dialects (psycopg2, mysqldb and so pymysql, pyodbc,
cx_oracle), each wrapped once its module is imported.  A third-party dialect
overriding ``do_execute*`` without calling its base gets no spans (limit in
docs/sql.md).

Attached while ``trace_sqlalchemy`` is on, or while ``sql_trace_on_request``
permits it *and* a request flagged with the baggage ``os_trace.sql=1`` runs in
the process (our WSGI and RPC hooks report those to
:mod:`os_trace_plugins._flagged`, which calls us on 0 -> 1 and 1 -> 0).
The switches are followed through
:data:`~os_trace_plugins._switches.SWITCHES` (SIGHUP or
:func:`os_trace_plugins.db.set_sql_tracing`).  Nothing here raises into its
caller: failures are logged once.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from os_trace_plugins import _flagged, _safety
from os_trace_plugins._patching import Patch, when_imported
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.db import _attributes as attributes
from os_trace_plugins.db import _gate as gate
from os_trace_plugins.db._execute import Executor

__all__ = ["SQLToggle", "TOGGLE", "TARGETS", "reset"]

LOG = logging.getLogger(__name__)

#: (module, "Class.method", which Executor wrapper)
TARGETS: tuple[tuple[str, str, str], ...] = (
    ("sqlalchemy.engine.default", "DefaultDialect.do_execute", "do_execute"),
    ("sqlalchemy.engine.default", "DefaultDialect.do_executemany", "do_executemany"),
    ("sqlalchemy.engine.default", "DefaultDialect.do_execute_no_params",
     "do_execute_no_params"),
    ("sqlalchemy.dialects.postgresql.psycopg2", "PGDialect_psycopg2.do_executemany",
     "do_executemany"),
    ("sqlalchemy.dialects.mysql.mysqldb", "MySQLDialect_mysqldb.do_executemany",
     "do_executemany"),
    ("sqlalchemy.dialects.mssql.pyodbc", "MSDialect_pyodbc.do_executemany",
     "do_executemany"),
    ("sqlalchemy.dialects.oracle.cx_oracle", "OracleDialect_cx_oracle.do_executemany",
     "do_executemany"),
)


class SQLToggle:
    """Owns the wrappers and applies them as the switches say."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.executor: Executor | None = None
        self.patches: list[Patch] = []
        self.attached = False
        self._cancels: list[Callable[[], None]] = []

    @property
    def installed(self) -> bool:
        return self.executor is not None

    def install(self, tracer: trace.Tracer, provider: Any = None) -> None:
        """Follow the switches with wrappers that use ``tracer``; the sampler
        of ``provider`` (None: the global provider) decides per context."""
        with self._lock:
            if self.installed:
                self.uninstall()
            gate.set_provider(provider)
            self.executor = Executor(tracer)
            self.patches = [Patch(module, path, getattr(self.executor, which))
                            for module, path, which in TARGETS]
            for module in sorted({p.module for p in self.patches}):
                if module not in sys.modules:  # a dialect loaded later
                    self._cancels.append(when_imported(module, self._late_import))
            SWITCHES.subscribe("trace_sqlalchemy", self._on_switch)
            SWITCHES.subscribe("sql_trace_on_request", self._on_switch)
            SWITCHES.subscribe("sql_max_statement_length",
                               attributes.clear_statement_caches)
            _flagged.subscribe(self._on_flagged)
            self.apply()

    def uninstall(self) -> None:
        """Unwrap and stop following the switches."""
        with self._lock:
            if not self.installed:
                return
            SWITCHES.unsubscribe("trace_sqlalchemy", self._on_switch)
            SWITCHES.unsubscribe("sql_trace_on_request", self._on_switch)
            SWITCHES.unsubscribe("sql_max_statement_length",
                                 attributes.clear_statement_caches)
            _flagged.unsubscribe(self._on_flagged)
            cancels, self._cancels = self._cancels, []
            for cancel in cancels:
                cancel()
            self._detach()
            self.executor = None
            self.patches = []
            gate.forget()  # drop the reference to the last context

    @staticmethod
    def wanted() -> bool:
        return bool(SWITCHES.trace_sqlalchemy or (
            SWITCHES.sql_trace_on_request and _flagged.running() > 0))

    def apply(self) -> None:
        """Wrap or unwrap to match the current switches; never raises."""
        with self._lock:
            if not self.installed:
                return
            try:
                if self.wanted():
                    self._attach()
                else:
                    self._detach()
            except Exception as exc:
                _safety.report_failure("switching SQL tracing", exc)

    def _attach(self) -> None:
        if self.attached:
            return
        self.attached = True
        for p in self.patches:
            if p.module in sys.modules:  # never registers an import hook per switch
                p.apply()

    def _detach(self) -> None:
        if not self.attached:
            return
        self.attached = False
        for p in self.patches:
            _safety.safe_call(f"unwrapping {p.module}.{p.path}", p.remove)

    def _late_import(self, module: Any) -> None:
        with self._lock:
            if self.attached:
                for p in self.patches:
                    if p.module == module.__name__:
                        p.apply()

    def _on_flagged(self, active: bool) -> None:
        self.apply()

    def _on_switch(self, old: Any, new: Any) -> None:
        self.apply()
        LOG.info("os_trace_plugins: SQL spans %s (trace_sqlalchemy=%s, "
                 "sql_trace_on_request=%s)", "wanted" if self.attached else "off",
                 SWITCHES.trace_sqlalchemy, SWITCHES.sql_trace_on_request)


TOGGLE = SQLToggle()


def reset() -> None:
    """Unwrap everything (tests, shutdown)."""
    TOGGLE.uninstall()
