"""Wrap drivers as stevedore or ``oslo_utils.importutils`` loads them.

The operator lists entry-point namespaces or import-path prefixes in
``[profiler] driver_namespaces``; while the ``drivers`` hook is instrumented:

* **stevedore**: ``ExtensionManager._load_one_plugin`` (the one place every
  manager, ``DriverManager``, ``NamedExtensionManager``, ``HookManager``...,
  builds an ``Extension``) is patched; for a listed namespace the loaded
  object (``invoke_on_load=True``) becomes a traced proxy, else a plugin
  class becomes a traced subclass (a module, a traced module proxy; a factory
  function is left alone).  The driver name is the entry-point name, the
  namespace goes in ``openstack.driver.namespace``.
* **importutils**: ``import_class``, ``import_object``, ``import_object_ns``
  and ``import_module`` are patched; a result whose import path equals a
  listed prefix or starts with ``prefix.`` is wrapped.  Code that did
  ``from oslo_utils.importutils import import_object`` before the hook was
  instrumented keeps the original function (documented limitation).

The patches are the core's (:class:`~os_trace_plugins._patching.Patch`
through :meth:`Hook.patch <os_trace_plugins._hooks.Hook.patch>`): wrapt
wrappers applied when the service imports ``stevedore.extension`` or
``oslo_utils.importutils`` (instrumenting imports neither), and removed by
``uninstrument()``, which takes away only our wrapper (left inert inside the
chain when something wrapped on top of it).

Drivers are wrapped whatever the switch says when they load, so turning
``trace_drivers`` on later (SIGHUP) traces drivers loaded while it was off.
Drivers already handed out stay wrapped and keep following the switch.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import trace

from os_trace_plugins import _safety
from os_trace_plugins._patching import Wrapper
from os_trace_plugins.drivers import _wrapper as wrapper

__all__ = ["AutoWrapper", "IMPORTERS"]

LOG = logging.getLogger(__name__)

#: the oslo_utils.importutils functions whose result may be a driver
IMPORTERS = ("import_class", "import_object", "import_module")


class AutoWrapper:
    """Patches stevedore and importutils for the listed namespaces."""

    def __init__(self, namespaces: Iterable[str], tracer: trace.Tracer) -> None:
        self.namespaces = tuple(n.strip() for n in namespaces if n and n.strip())
        self.tracer = tracer

    # -- matching and wrapping ---------------------------------------------
    def matches_namespace(self, namespace: Any) -> bool:
        return isinstance(namespace, str) and namespace in self.namespaces

    def matches_path(self, path: Any) -> bool:
        if not isinstance(path, str):
            return False
        return any(path == p or path.startswith(p + ".") or path.startswith(p + ":")
                   for p in self.namespaces)

    def wrap(self, obj: Any, name: str, namespace: str) -> Any:
        """``obj`` traced, or ``obj`` itself when it is no driver (a factory function)."""
        if obj is None or inspect.isroutine(obj) or isinstance(obj, functools.partial):
            LOG.debug("os_trace_plugins: %s from %s is not a class, instance or "
                      "module; not wrapped", name, namespace)
            return obj
        return _safety.safe_call(
            f"wrapping driver {name} from {namespace}", wrapper.trace_driver, obj, name,
            tracer=self.tracer, attributes={"openstack.driver.namespace": namespace},
            default=obj)

    # -- patching ----------------------------------------------------------
    def install(self, patch: Callable[[str, str, Wrapper], Any]) -> None:
        """Register our wrappers with ``patch`` (:meth:`Hook.patch`)."""
        if not self.namespaces:
            return
        patch("stevedore.extension", "ExtensionManager._load_one_plugin",
              self._load_one_plugin)
        for name in IMPORTERS:
            patch("oslo_utils.importutils", name, self._importer)
        patch("oslo_utils.importutils", "import_object_ns", self._importer_ns)

    # -- the wrappers (wrapt's signature) -------------------------------------
    def _load_one_plugin(self, wrapped: Callable[..., Any], manager: Any,
                         args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        ext = wrapped(*args, **kwargs)
        if ext is not None:
            _safety.safe_call("wrapping a stevedore driver", self._wrap_extension,
                              manager, ext)
        return ext

    def _wrap_extension(self, manager: Any, ext: Any) -> None:
        namespace = getattr(manager, "namespace", None)
        if not isinstance(namespace, str) or not self.matches_namespace(namespace):
            return
        if ext.obj is not None:
            ext.obj = self.wrap(ext.obj, ext.name, namespace)
        elif ext.plugin is not None:
            ext.plugin = self.wrap(ext.plugin, ext.name, namespace)

    def _importer(self, wrapped: Callable[..., Any], instance: Any,
                  args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = wrapped(*args, **kwargs)
        import_str = str(args[0] if args else kwargs.get("import_str"))
        if self.matches_path(import_str):
            return self.wrap(result, import_str.rsplit(".", 1)[-1], import_str)
        return result

    def _importer_ns(self, wrapped: Callable[..., Any], instance: Any,
                     args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = wrapped(*args, **kwargs)
        name_space = args[0] if args else kwargs.get("name_space")
        import_str = str(args[1] if len(args) > 1 else kwargs.get("import_str"))
        for path in (f"{name_space}.{import_str}", import_str):
            if self.matches_path(path):
                return self.wrap(result, import_str.rsplit(".", 1)[-1], path)
        return result
