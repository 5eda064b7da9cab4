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

Drivers are wrapped whatever the switch says when they load, so turning
``trace_drivers`` on later (SIGHUP) traces drivers loaded while it was off.
Uninstrumenting puts back the exact original attributes; drivers already
handed out stay wrapped and keep following the switch.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import trace

from os_trace_plugins import _safety
from os_trace_plugins.drivers import wrapper

__all__ = ["AutoWrapper"]

LOG = logging.getLogger(__name__)

_MISSING = object()


class AutoWrapper:
    """Patches stevedore and importutils for the listed namespaces."""

    def __init__(self, namespaces: Iterable[str], tracer: trace.Tracer) -> None:
        self.namespaces = tuple(n.strip() for n in namespaces if n and n.strip())
        self.tracer = tracer
        self._patched: list[tuple[Any, str, Any]] = []

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
    def _patch(self, owner: Any, attr: str, make: Callable[[Any], Any]) -> None:
        original = owner.__dict__.get(attr, _MISSING) if isinstance(owner, type) \
            else getattr(owner, attr, _MISSING)
        if original is _MISSING:
            return
        setattr(owner, attr, make(original))
        self._patched.append((owner, attr, original))

    def install(self) -> None:
        if not self.namespaces:
            return
        try:
            from stevedore import extension
        except ImportError:
            LOG.debug("os_trace_plugins: stevedore not installed; not patched")
        else:
            self._patch(extension.ExtensionManager, "_load_one_plugin",
                        self._stevedore_loader)
        try:
            from oslo_utils import importutils
        except ImportError:
            LOG.debug("os_trace_plugins: oslo.utils not installed; not patched")
        else:
            for attr in ("import_class", "import_object", "import_module"):
                self._patch(importutils, attr, self._importer)
            self._patch(importutils, "import_object_ns", self._importer_ns)

    def uninstall(self) -> None:
        while self._patched:
            owner, attr, original = self._patched.pop()
            setattr(owner, attr, original)

    # -- the patched callables --------------------------------------------
    def _stevedore_loader(self, original: Callable[..., Any]) -> Callable[..., Any]:
        auto = self

        @functools.wraps(original)
        def _load_one_plugin(manager: Any, ep: Any, *args: Any, **kwargs: Any) -> Any:
            ext = original(manager, ep, *args, **kwargs)
            if ext is not None:
                _safety.safe_call("wrapping a stevedore driver", auto._wrap_extension,
                                  manager, ext)
            return ext
        return _load_one_plugin

    def _wrap_extension(self, manager: Any, ext: Any) -> None:
        namespace = getattr(manager, "namespace", None)
        if not isinstance(namespace, str) or not self.matches_namespace(namespace):
            return
        if ext.obj is not None:
            ext.obj = self.wrap(ext.obj, ext.name, namespace)
        elif ext.plugin is not None:
            ext.plugin = self.wrap(ext.plugin, ext.name, namespace)

    def _importer(self, original: Callable[..., Any]) -> Callable[..., Any]:
        auto = self

        @functools.wraps(original)
        def importer(import_str: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(import_str, *args, **kwargs)
            if auto.matches_path(import_str):
                return auto.wrap(result, str(import_str).rsplit(".", 1)[-1], import_str)
            return result
        return importer

    def _importer_ns(self, original: Callable[..., Any]) -> Callable[..., Any]:
        auto = self

        @functools.wraps(original)
        def import_object_ns(name_space: Any, import_str: Any, *args: Any,
                             **kwargs: Any) -> Any:
            result = original(name_space, import_str, *args, **kwargs)
            for path in (f"{name_space}.{import_str}", import_str):
                if auto.matches_path(path):
                    name = str(import_str).rsplit(".", 1)[-1]
                    return auto.wrap(result, name, path)
            return result
        return import_object_ns
