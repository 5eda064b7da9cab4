"""The SQL hook: plugs :mod:`._toggle` into the hook loader and OpenTelemetry.

Loaded by ``os_trace_plugins.setup()`` through the ``os_trace_plugins.hooks``
entry point ``sqlalchemy`` even while ``trace_sqlalchemy`` is off (the option
is mutable).  Instrumenting imports nothing of SQLAlchemy: it registers a
post-import hook on ``sqlalchemy``, and the Engine-class listeners are
registered when the service imports it (at once if it already has), then
attached and detached as the switches say.  The same hook is offered to
``opentelemetry-instrument`` as :class:`SQLAlchemyInstrumentor`; both go
through the one shared instance (:func:`os_trace_plugins._hooks.shared`).
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar

from os_trace_plugins._hooks import Hook, HookInstrumentor

__all__ = ["SQLAlchemyHook", "SQLAlchemyInstrumentor"]

_TOGGLE_MODULE = "os_trace_plugins.db._toggle"


class SQLAlchemyHook(Hook):
    """One CLIENT span per SQL statement, for every engine of the process."""

    name: ClassVar[str] = "sqlalchemy"
    option: ClassVar[str | None] = "trace_sqlalchemy"

    def _instrument(self) -> None:
        self.on_import("sqlalchemy", self._install)

    def _install(self, _module: Any) -> None:
        from os_trace_plugins.db import _toggle as toggle  # SQLAlchemy is imported by now

        toggle.TOGGLE.install(self.tracer, self.provider)

    def _uninstrument(self) -> None:
        toggle = sys.modules.get(_TOGGLE_MODULE)
        if toggle is not None:  # installed only once SQLAlchemy was imported
            toggle.TOGGLE.uninstall()  # type: ignore[attr-defined]


class SQLAlchemyInstrumentor(HookInstrumentor):
    """``opentelemetry-instrument`` entry: the SQL hook as a BaseInstrumentor."""

    hook_class: ClassVar[type[Hook]] = SQLAlchemyHook
    dependencies: ClassVar[tuple[str, ...]] = ("sqlalchemy >= 2.0, < 2.2",)
