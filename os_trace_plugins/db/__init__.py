"""SQL spans from SQLAlchemy: one CLIENT span per statement, switched at runtime.

Public API: :func:`set_sql_tracing` (on/off from code, for every engine of the
process) and :class:`SQLAlchemyInstrumentor` (the ``opentelemetry_instrumentor``
entry point).  Everything else is configured from ``[profiler]``
(``trace_sqlalchemy``, ``trace_sqlalchemy_parameters``,
``sql_max_statement_length``, ``sql_trace_on_request``, ``sql_root_spans``);
see docs/sql.md.  Importing this package imports nothing of SQLAlchemy.
"""

from __future__ import annotations

from os_trace_plugins.db._hook import SQLAlchemyInstrumentor

__all__ = ["SQLAlchemyInstrumentor", "set_sql_tracing"]


def set_sql_tracing(on: bool) -> None:
    """Switch SQL spans on or off for every engine of the process; never raises.

    Same effect as flipping ``[profiler] trace_sqlalchemy`` and sending
    SIGHUP.  Works before :func:`os_trace_plugins.setup` too: the shared SQL
    hook is instrumented on the global tracer provider (a later ``setup()``
    re-instruments it on its own).  A failure is logged once, never raised.
    """
    from os_trace_plugins import _safety

    try:
        from os_trace_plugins._hooks import shared
        from os_trace_plugins._switches import SWITCHES
        from os_trace_plugins.db._hook import SQLAlchemyHook

        SWITCHES.set("trace_sqlalchemy", bool(on))
        hook = shared(SQLAlchemyHook)
        if not hook.instrumented:
            hook.instrument()
    except Exception as exc:
        _safety.report_failure("set_sql_tracing", exc)
