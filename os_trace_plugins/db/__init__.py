"""SQL spans from SQLAlchemy: one CLIENT span per statement, switched at runtime.

Public API: :func:`set_sql_tracing` (on/off from code, for every engine of the
process).  Everything else is configured from ``[profiler]``
(``trace_sqlalchemy``, ``trace_sqlalchemy_parameters``,
``sql_max_statement_length``, ``sql_trace_on_request``); see docs/sql.md.
"""

from __future__ import annotations

__all__ = ["set_sql_tracing"]


def set_sql_tracing(on: bool) -> None:
    """Switch SQL spans on or off for every engine of the process."""
    from os_trace_plugins.db import toggle  # imports SQLAlchemy only when asked

    toggle.set_sql_tracing(on)
