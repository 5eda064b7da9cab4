"""The ``drivers`` hook: automatic wrapping of drivers from listed namespaces.

Loaded from the ``os_trace_plugins.hooks`` entry point by ``setup()``.  Its
switch ``trace_drivers`` is mutable, so the hook is instrumented even while
the switch is off: the wrappers read ``SWITCHES.trace_drivers`` on every call
and pass straight through when it is off.  ``driver_namespaces`` is read
when the hook is instrumented (it decides what gets patched).  The patches
are the core's (:meth:`Hook.patch`), so ``uninstrument()`` removes them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from os_trace_plugins import opts
from os_trace_plugins._hooks import Hook
from os_trace_plugins.drivers._autowrap import AutoWrapper

__all__ = ["DriverHook"]


def _option(conf: Any, name: str, default: Any) -> Any:
    group = getattr(conf, opts.GROUP, None) if conf is not None else None
    value = getattr(group, name, None) if group is not None else None
    return default if value is None else value


class DriverHook(Hook):
    """Wrap drivers loaded through stevedore or importutils (see :mod:`._autowrap`)."""

    name: ClassVar[str] = "drivers"
    option: ClassVar[str | None] = "trace_drivers"

    def _instrument(self) -> None:
        auto = AutoWrapper(_option(self.conf, "driver_namespaces", []), self.tracer)
        auto.install(self.patch)
