"""The Hook base class and the entry-point loader.

A hook is one instrumentation point (RPC, notifications, SQL, drivers,
outgoing HTTP).  It has idempotent :meth:`Hook.instrument` /
:meth:`Hook.uninstrument` and names the ``[profiler]`` switch that turns it
on.  Hooks are found through the ``os_trace_plugins.hooks`` entry-point group,
so a third-party distribution adds one by declaring an entry point alone::

    [options.entry_points]
    os_trace_plugins.hooks =
        mydriver = my_pkg.tracing:MyHook

A hook whose switch is *mutable* is loaded even while the switch is off and
follows the switch at runtime (by a cheap check at call time, or by attaching
and detaching itself on change): OSProfiler's trap was a flag read only at
registration.  A hook that fails to import or to instrument is logged by name
and the others still load.
"""

from __future__ import annotations

import logging
import threading
from importlib import metadata
from typing import Any, ClassVar

from opentelemetry import trace

from os_trace_plugins import _safety, opts
from os_trace_plugins._version import __version__
from os_trace_plugins.export.presample import Presampler

__all__ = ["Hook", "HookInstrumentor", "ENTRY_POINT_GROUP", "load_hooks",
           "unload_hooks", "loaded_hooks"]

LOG = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "os_trace_plugins.hooks"


class Hook:
    """Base class of an instrumentation point.

    Subclasses set :attr:`name`, :attr:`option` (the ``[profiler]`` switch, or
    None for always-on) and :attr:`requires` (modules the hook needs; a
    missing one is reported clearly when the operator asked for the hook), and
    implement :meth:`_instrument` / :meth:`_uninstrument`.
    """

    name: ClassVar[str] = "hook"
    option: ClassVar[str | None] = None
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._instrumented = False
        self._lock = threading.RLock()
        self.conf: Any = None
        self.tracer: trace.Tracer = trace.get_tracer(
            f"os_trace_plugins.{self.name}", __version__)
        #: root decisions before the SDK, for the tracer this hook uses now
        self.presampler = Presampler(lambda: self.tracer)

    @property
    def instrumented(self) -> bool:
        return self._instrumented

    def instrument(self, conf: Any = None,
                   tracer_provider: trace.TracerProvider | None = None) -> None:
        """Attach the hook; a second call does nothing."""
        with self._lock:
            if self._instrumented:
                return
            self.conf = conf
            self.tracer = trace.get_tracer(
                f"os_trace_plugins.{self.name}", __version__,
                tracer_provider=tracer_provider)
            self._instrument()
            self._instrumented = True

    def uninstrument(self) -> None:
        """Detach the hook; a second call does nothing."""
        with self._lock:
            if not self._instrumented:
                return
            try:
                self._uninstrument()
            finally:
                self._instrumented = False

    def _instrument(self) -> None:
        raise NotImplementedError

    def _uninstrument(self) -> None:
        raise NotImplementedError


try:  # opentelemetry-instrumentation is optional: only `opentelemetry-instrument` needs it
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor as _BaseInstrumentor,
    )
except ImportError:  # pragma: no cover - depends on the environment
    _BaseInstrumentor = object


class HookInstrumentor(_BaseInstrumentor):  # type: ignore[misc,valid-type]
    """Expose a :class:`Hook` as an OpenTelemetry ``BaseInstrumentor``.

    ``opentelemetry-instrument`` loads the ``opentelemetry_instrumentor`` entry
    points and calls ``instrument(tracer_provider=...)``; with no oslo.config
    object the switches keep their defaults.  Subclasses set ``hook_class``
    and ``dependencies``.
    """

    hook_class: ClassVar[type[Hook]] = Hook
    dependencies: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        self.hook = self.hook_class()

    def instrumentation_dependencies(self) -> tuple[str, ...]:
        return self.dependencies

    def _instrument(self, **kwargs: Any) -> None:
        self.hook.instrument(kwargs.get("conf"), kwargs.get("tracer_provider"))

    def _uninstrument(self, **kwargs: Any) -> None:
        self.hook.uninstrument()


_loaded: dict[str, Hook] = {}
_loaded_lock = threading.Lock()


def loaded_hooks() -> dict[str, Hook]:
    """The hooks currently instrumented, by entry-point name."""
    with _loaded_lock:
        return dict(_loaded)


def _wanted(hook_cls: type[Hook], conf: Any) -> bool:
    if hook_cls.option is None:
        return True
    if hook_cls.option in opts.MUTABLE_SWITCHES:
        return True  # follows its switch at runtime
    return bool(getattr(getattr(conf, opts.GROUP), hook_cls.option))


def load_hooks(conf: Any, tracer_provider: trace.TracerProvider | None = None,
               ) -> dict[str, Hook]:
    """Instrument every hook of the entry-point group that the config wants."""
    try:
        eps = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception as exc:  # pragma: no cover - broken metadata
        _safety.report_failure("reading entry points", exc)
        return {}
    for ep in sorted(eps, key=lambda e: e.name):
        with _loaded_lock:
            if ep.name in _loaded:
                continue
        try:
            hook_cls = ep.load()
        except ImportError as exc:
            LOG.warning("os_trace_plugins: hook %r (%s) not loaded: %s; install the "
                        "package it needs or remove it", ep.name, ep.value, exc)
            continue
        except Exception as exc:
            LOG.error("os_trace_plugins: hook %r (%s) failed to load: %s",
                      ep.name, ep.value, exc, exc_info=exc)
            continue
        try:
            if not (isinstance(hook_cls, type) and issubclass(hook_cls, Hook)):
                raise TypeError(f"{ep.value} is not a os_trace_plugins Hook subclass")
            if not _wanted(hook_cls, conf):
                LOG.debug("os_trace_plugins: hook %r off by configuration", ep.name)
                continue
            hook = hook_cls()
            hook.instrument(conf, tracer_provider)
        except Exception as exc:
            LOG.error("os_trace_plugins: hook %r failed to instrument: %s",
                      ep.name, exc, exc_info=exc)
            continue
        with _loaded_lock:
            _loaded[ep.name] = hook
        LOG.info("os_trace_plugins: hook %r instrumented", ep.name)
    return loaded_hooks()


def unload_hooks() -> None:
    """Uninstrument every loaded hook."""
    with _loaded_lock:
        hooks = list(_loaded.items())
        _loaded.clear()
    for name, hook in hooks:
        _safety.safe_call(f"uninstrumenting hook {name}", hook.uninstrument)
