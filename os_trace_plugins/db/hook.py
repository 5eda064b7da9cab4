"""The SQL hook: plugs :mod:`.toggle` into the hook loader and OpenTelemetry.

Loaded by ``os_trace_plugins.setup()`` through the ``os_trace_plugins.hooks``
entry point ``sqlalchemy`` even while ``trace_sqlalchemy`` is off (the option
is mutable): instrumenting only starts following the switches, and the
Engine-class listeners are attached when they are wanted.  The same hook is
offered to ``opentelemetry-instrument`` as :class:`SQLAlchemyInstrumentor`.
"""

from __future__ import annotations

from typing import ClassVar

from os_trace_plugins._hooks import Hook, HookInstrumentor
from os_trace_plugins.db import toggle

__all__ = ["SQLAlchemyHook", "SQLAlchemyInstrumentor"]


class SQLAlchemyHook(Hook):
    """One CLIENT span per SQL statement, for every engine of the process."""

    name: ClassVar[str] = "sqlalchemy"
    option: ClassVar[str | None] = "trace_sqlalchemy"
    requires: ClassVar[tuple[str, ...]] = ("sqlalchemy",)

    def _instrument(self) -> None:
        toggle.TOGGLE.install(self.tracer)

    def _uninstrument(self) -> None:
        toggle.TOGGLE.uninstall()


class SQLAlchemyInstrumentor(HookInstrumentor):
    """``opentelemetry-instrument`` entry: the SQL hook as a BaseInstrumentor."""

    hook_class: ClassVar[type[Hook]] = SQLAlchemyHook
    dependencies: ClassVar[tuple[str, ...]] = ("sqlalchemy >= 2.0, < 2.2",)
