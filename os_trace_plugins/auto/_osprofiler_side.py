"""OSProfiler side by side: OSProfiler is kept quiet while our tracing is on.

OpenStack services wire OSProfiler from the same ``[profiler]`` section we
read: ``osprofiler.initializer.init_from_conf(conf, ...)`` at start, a
serializer carrying ``trace_info``, ``trace_cls`` on managers,
``osprofiler.sqlalchemy.add_tracing`` through oslo.db's
``append_on_engine_create`` and the ``osprofiler`` paste filter.  Left alone,
``init_from_conf`` builds OSProfiler's driver for our connection string:
``otlp://`` adds a second ``BatchSpanProcessor`` to the global provider (every
span exported twice), ``sqlite:///`` logs an ERROR with a traceback at every
start, and its points would start a second trace per request.

Decision: while ``os_trace_plugins`` is tracing the process, the wrapped
``init_from_conf`` does not run: no OSProfiler notifier is installed (its
default stays the no-op notifier) and ``osprofiler.web.disable()`` makes its
paste filter pass requests straight through, so its profiler is never
started by an HTTP request and ``trace_cls`` / ``add_tracing`` points, which
only act on a started profiler, stay quiet.  Our own hooks cover the same five
kinds of points.  A request arriving from a service still running OSProfiler
still joins the trace through its signed headers or its ``trace_info`` (our
middleware and RPC server understand both).  While our tracing is off
(``enabled = false``, bad values, setup failed) ``init_from_conf`` runs
unchanged: the service behaves as without us.  A service that called
``init_from_conf`` *before* our ``setup()`` (the setup() route, in that order)
keeps OSProfiler's driver: ``os-trace check`` warns about that clash.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, ClassVar

from os_trace_plugins import _safety
from os_trace_plugins._hooks import Hook
from os_trace_plugins._setup import is_enabled

__all__ = ["OSProfilerHook", "quiet_osprofiler"]

LOG = logging.getLogger("os_trace_plugins")

_told: set[str] = set()


def quiet_osprofiler() -> None:
    """Make OSProfiler's paste filter pass through (its public switch)."""
    web = sys.modules.get("osprofiler.web")
    if web is not None:
        web.disable()


def _init_from_conf(wrapped: Any, instance: Any, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
    if not is_enabled():
        return wrapped(*args, **kwargs)
    _safety.safe_call("keeping OSProfiler quiet", quiet_osprofiler)
    if "init" not in _told:
        _told.add("init")
        LOG.info("os_trace_plugins: osprofiler.initializer.init_from_conf skipped: "
                 "os_trace_plugins traces this service from the same [profiler] "
                 "section (one trace per request, no second exporter)")
    return None


class OSProfilerHook(Hook):
    """Skips OSProfiler's initialization while our tracing is on."""

    name: ClassVar[str] = "osprofiler"
    option: ClassVar[str | None] = None

    def _instrument(self) -> None:
        self.patch("osprofiler.initializer", "init_from_conf", _init_from_conf)
