"""The Hook base class, the shared hook instances and the entry-point loader.

A hook is one instrumentation point (RPC, notifications, SQL, drivers,
outgoing HTTP).  Its :meth:`Hook.instrument` / :meth:`Hook.uninstrument` are
idempotent and symmetric, and it names the ``[profiler]`` switch that turns it
on.  Hooks are found through the ``os_trace_plugins.hooks`` entry-point group,
so a third-party distribution adds one by declaring an entry point alone (see
:mod:`os_trace_plugins.hooks`, the public face of this module).

There is **one instance per hook class** in a process (:func:`shared`):
``setup()``, ``opentelemetry-instrument`` (through :class:`HookInstrumentor`,
whatever number of instrumentor objects it builds) and code calling
``RPCInstrumentor().instrument()`` all reach the same object, so instrumenting
twice never stacks two wrappers, and uninstrumenting from any of them removes
what any of them installed.

Instrumenting imports nothing of the target library: patches are
:class:`~os_trace_plugins._patching.Patch` objects applied when the service
imports the module.  A hook whose switch is *mutable* is loaded even while the
switch is off and follows it at call time (OSProfiler's trap was a flag read
only at registration).  A hook that fails to import or to instrument is logged
by name and the others still load.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from importlib import metadata
from typing import Any, ClassVar, TypeVar

from opentelemetry import trace

from os_trace_plugins import _safety, opts
from os_trace_plugins._patching import Patch, Wrapper, when_imported
from os_trace_plugins._version import __version__

__all__ = ["Hook", "HookInstrumentor", "ENTRY_POINT_GROUP", "load_hooks",
           "unload_hooks", "loaded_hooks", "shared"]

LOG = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "os_trace_plugins.hooks"

H = TypeVar("H", bound="Hook")


class Hook:
    """Base class of an instrumentation point.

    Subclasses set :attr:`name` and :attr:`option` (the ``[profiler]`` switch,
    or None for always-on) and implement :meth:`_instrument`, usually with
    :meth:`patch` and :meth:`on_import` calls only; the default
    :meth:`_uninstrument` removes those.  ``self.tracer`` follows the
    provider given to :meth:`instrument` (default: the global one).
    """

    name: ClassVar[str] = "hook"
    option: ClassVar[str | None] = None

    def __init__(self) -> None:
        self._instrumented = False
        self._lock = threading.RLock()
        self.conf: Any = None
        #: the provider given to :meth:`instrument` (None: the global one);
        #: its sampler is asked first on the unsampled fast path (``_sampling``)
        self.provider: trace.TracerProvider | None = None
        self.tracer: trace.Tracer = trace.get_tracer(
            f"os_trace_plugins.{self.name}", __version__)
        self._patches: list[Patch] = []
        self._cancels: list[Callable[[], None]] = []

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
            self.provider = tracer_provider
            self.tracer = trace.get_tracer(
                f"os_trace_plugins.{self.name}", __version__,
                tracer_provider=tracer_provider)
            try:
                self._instrument()
            except BaseException:
                self._remove_patches()
                raise
            self._instrumented = True

    def uninstrument(self) -> None:
        """Detach the hook; a second call does nothing."""
        with self._lock:
            if not self._instrumented:
                return
            try:
                self._uninstrument()
            finally:
                self._remove_patches()
                self._instrumented = False

    # -- what subclasses build on ------------------------------------------
    def patch(self, module: str, path: str, wrapper: Wrapper) -> Patch:
        """Wrap ``module``'s ``path`` (``"Class.method"``) with a wrapt wrapper,
        now or when the service imports ``module``; removed on uninstrument."""
        p = Patch(module, path, wrapper)
        self._patches.append(p)
        p.apply()
        return p

    def on_import(self, module: str, callback: Callable[[Any], None]) -> None:
        """Run ``callback(module)`` once ``module`` is imported (now if it is);
        cancelled on uninstrument if it has not run yet."""
        self._cancels.append(when_imported(module, callback))

    def _instrument(self) -> None:
        raise NotImplementedError

    def _uninstrument(self) -> None:
        """Undo what :meth:`_instrument` did beyond patches (none by default)."""

    def _remove_patches(self) -> None:
        cancels, self._cancels = self._cancels, []
        for cancel in cancels:
            cancel()
        patches, self._patches = self._patches, []
        for p in reversed(patches):
            _safety.safe_call(f"removing the patch of {p.module}.{p.path}", p.remove)


_shared: dict[type, Hook] = {}
_shared_lock = threading.Lock()


def shared(hook_cls: type[H]) -> H:
    """The process's one instance of ``hook_cls``."""
    with _shared_lock:
        hook = _shared.get(hook_cls)
        if hook is None:
            hook = _shared[hook_cls] = hook_cls()
        return hook  # type: ignore[return-value]


try:  # opentelemetry-instrumentation is optional: only `opentelemetry-instrument` needs it
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor as _BaseInstrumentor,
    )
except ImportError:  # pragma: no cover - depends on the environment
    _BaseInstrumentor = object


class HookInstrumentor(_BaseInstrumentor):  # type: ignore[misc,valid-type]
    """Expose a :class:`Hook` as an OpenTelemetry ``BaseInstrumentor``.

    ``opentelemetry-instrument`` loads the ``opentelemetry_instrumentor`` entry
    points and calls ``instrument(tracer_provider=...)``.  Every instrumentor
    object drives the one shared hook (:func:`shared`), so instrument and
    uninstrument are symmetric across instances and never stack.  Subclasses
    set ``hook_class`` and ``dependencies``.
    """

    hook_class: ClassVar[type[Hook]] = Hook
    dependencies: ClassVar[tuple[str, ...]] = ()

    @property
    def hook(self) -> Hook:
        return shared(self.hook_class)

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
    seen: set[str] = set()
    for ep in sorted(eps, key=lambda e: e.name):
        if ep.name in seen:  # the same distribution on sys.path twice
            continue
        seen.add(ep.name)
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
            hook = shared(hook_cls)
            if hook.instrumented:  # opentelemetry-instrument came first: start over
                hook.uninstrument()  # with the config and provider of setup()
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
