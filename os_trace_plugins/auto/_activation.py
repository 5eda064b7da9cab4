"""Zero-code activation: ``opentelemetry-instrument <service> --config-file F``.

An operator cannot add ``os_trace_plugins.setup(CONF)`` to nova, cinder or
placement; they can install a package, write a ``[profiler]`` section and
change the service's command.  ``opentelemetry-instrument`` loads the
``opentelemetry_instrumentor`` entry point ``os_trace_plugins`` (the
:class:`AutoInstrumentor` below), whose ``instrument()`` imports nothing of the
service's libraries: it registers post-import patches only.

* ``oslo_config.cfg.ConfigOpts.__call__``: once the service has parsed its
  configuration (``CONF(argv, project=...)``, as every OpenStack service does
  at start, placement on a ConfigOpts of its own) and the parsed files hold a
  ``[profiler]`` section, ``os_trace_plugins.setup(conf)`` runs, once per
  process, under the safety guard and after the service's own call returned
  (a config that fails to parse raises the service's own error, unchanged).
  From there every hook and option behaves as after ``setup()``: the
  connection string, the embedded store, ``sampling_rate``, the mutable
  switches and SIGHUP (the service's own ConfigOpts is the one bound).
* ``osprofiler.initializer.init_from_conf``: see
  :mod:`os_trace_plugins.auto._osprofiler_side`.

With ``[profiler] enabled = false`` or values that do not validate, setup()
logs its one line and our other instrumentors loaded by
``opentelemetry-instrument`` are uninstrumented again: the service runs as
without the package.  A process whose configuration has no ``[profiler]``
section is left to ``OTEL_*`` alone (one INFO line).

Workers: a worker forked after setup() keeps tracing and names its own pid
(:mod:`os_trace_plugins.auto._resource`).  A worker started with the *spawn*
method is a new interpreter; ``opentelemetry-instrument``'s PYTHONPATH brings
this module back in it, and the parent's parsed files, recorded in
``OS_TRACE_PLUGINS_AUTO_CONF``, set it up again as soon as
``multiprocessing.spawn`` starts the child.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from importlib import metadata
from typing import Any

from os_trace_plugins import _hooks, _safety, opts
from os_trace_plugins._patching import Patch, when_imported
from os_trace_plugins._setup import _program_name
from os_trace_plugins.auto._osprofiler_side import OSProfilerHook

__all__ = ["AutoInstrumentor", "Activation", "ACTIVATION", "ENV_CONF"]

LOG = logging.getLogger("os_trace_plugins")

#: where the parsed configuration is recorded for spawned children
ENV_CONF = "OS_TRACE_PLUGINS_AUTO_CONF"
_SPAWN_FLAG = "--multiprocessing-fork"
_SELF_ENTRY_POINT = "os_trace_plugins"


class Activation:
    """The process's zero-code activation state (one per process: ACTIVATION)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._patch: Patch | None = None
        self._cancel_spawn: Any = None
        self.conf: Any = None  # the ConfigOpts setup() was given
        self.result: bool | None = None  # what setup() answered
        self._told_no_section = False
        self._busy = False
        self._service: str | None = None  # a spawned child's parent's program
        self._log_patch: Patch | None = None
        self._state_line = ""  # setup()'s outcome, said again once oslo.log is set up

    @property
    def started(self) -> bool:
        return self._patch is not None

    def start(self) -> None:
        """Register the post-import patches (imports nothing)."""
        with self._lock:
            if self._patch is not None:
                return
            self._patch = Patch("oslo_config.cfg", "ConfigOpts.__call__", self._parsed)
            self._patch.apply()
            self._log_patch = Patch("oslo_log.log", "setup", self._logging_ready)
            self._log_patch.apply()
            _hooks.shared(OSProfilerHook).instrument()
            self._cancel_spawn = when_imported("multiprocessing.spawn", self._spawned)

    def stop(self) -> None:
        with self._lock:
            patch, self._patch = self._patch, None
            if patch is not None:
                patch.remove()
            log_patch, self._log_patch = self._log_patch, None
            if log_patch is not None:
                log_patch.remove()
            if self._cancel_spawn is not None:
                self._cancel_spawn()
                self._cancel_spawn = None
            self.conf = self.result = None
            self._told_no_section = False

    # -- the patch -----------------------------------------------------------
    def _parsed(self, wrapped: Any, instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        result = wrapped(*args, **kwargs)  # the service's own call, unguarded
        if self.result is None and not self._busy:
            _safety.safe_call("activating tracing from the parsed configuration",
                              self.consider, instance)
        return result

    def _logging_ready(self, wrapped: Any, instance: Any, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> Any:
        """Say setup()'s outcome again once ``oslo_log.log.setup()`` built the
        service's handlers: our activation runs right after the parse, when
        only WARNING and above reach stderr, so the INFO line was lost."""
        result = wrapped(*args, **kwargs)
        line, self._state_line = self._state_line, ""
        if line:
            _safety.safe_call("logging the tracing state", LOG.info, line)
        return result

    def consider(self, conf: Any) -> bool | None:
        """Set up from ``conf`` if its files hold ``[profiler]``; setup()'s answer."""
        with self._lock:
            if self.result is not None or self._busy:
                return self.result
            if opts.GROUP not in conf.list_all_sections():
                if not self._told_no_section:
                    self._told_no_section = True
                    LOG.info("os_trace_plugins: no [%s] section in %s: tracing left to "
                             "OTEL_* only", opts.GROUP, list(conf.config_file or []))
                return None
            self._busy = True
            try:
                return self._activate(conf)
            finally:
                self._busy = False

    def _activate(self, conf: Any) -> bool:
        import os_trace_plugins

        self.conf = conf
        _safety.safe_call("recording the configuration for spawned workers",
                          _record, conf)
        self.result = enabled = os_trace_plugins.setup(conf, service=self._service)
        self._state_line = _state_line(conf, enabled)
        if not enabled:
            _safety.safe_call("detaching the instrumentors", _detach_instrumentors)
        return enabled

    # -- spawned workers -----------------------------------------------------
    def _spawned(self, _module: Any) -> None:
        recorded = os.environ.get(ENV_CONF)
        if not recorded or _SPAWN_FLAG not in sys.argv or self.result is not None:
            return
        data = json.loads(recorded)
        if data.get("pid") == os.getpid():
            return
        from oslo_config import cfg

        self._service = data.get("service") or None
        conf = cfg.ConfigOpts()
        # parsing goes through the patch above, which sets this child up
        conf(args=[], project=data.get("project"), prog=data.get("prog"),
             default_config_files=data.get("files") or [],
             default_config_dirs=data.get("dirs") or [], use_env=False)


def _state_line(conf: Any, enabled: bool) -> str:
    from os_trace_plugins import _setup

    if not enabled:
        return "os_trace_plugins: tracing is off for this process (see the line above)"
    group = getattr(conf, opts.GROUP)
    service = _setup._service_name(group.service_name, ACTIVATION._service)
    return (f"os_trace_plugins: tracing on for {service}, exporting to "
            f"{group.connection_string} (activated by opentelemetry-instrument)")


def _record(conf: Any) -> None:
    os.environ[ENV_CONF] = json.dumps({
        "pid": os.getpid(), "project": conf.project, "prog": conf.prog,
        "service": ACTIVATION._service or _program_name(),
        "files": list(conf.config_file or []),
        "dirs": [conf.config_dir] if conf.config_dir else []})


def _detach_instrumentors() -> None:
    """Uninstrument our other ``opentelemetry_instrumentor`` entry points."""
    for ep in metadata.entry_points(group="opentelemetry_instrumentor"):
        if not ep.value.startswith("os_trace_plugins.") or ep.name == _SELF_ENTRY_POINT:
            continue
        instrumentor = _safety.safe_call(f"loading {ep.name}", ep.load)
        if instrumentor is None:
            continue
        obj = instrumentor()
        if getattr(obj, "is_instrumented_by_opentelemetry", False):
            _safety.safe_call(f"uninstrumenting {ep.name}", obj.uninstrument)


ACTIVATION = Activation()

try:  # only `opentelemetry-instrument` needs it, and brings it
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor as _BaseInstrumentor,
    )
except ImportError:  # pragma: no cover - depends on the environment
    _BaseInstrumentor = object


class AutoInstrumentor(_BaseInstrumentor):  # type: ignore[misc,valid-type]
    """``opentelemetry_instrumentor`` entry point ``os_trace_plugins``."""

    def instrumentation_dependencies(self) -> tuple[str, ...]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        ACTIVATION.start()

    def _uninstrument(self, **kwargs: Any) -> None:
        ACTIVATION.stop()
