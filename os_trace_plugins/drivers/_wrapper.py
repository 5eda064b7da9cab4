"""``trace_driver()``: trace every public method call of a vendor driver.

::

    from os_trace_plugins.drivers import trace_driver
    self.driver = trace_driver(driver, "compute")            # an instance
    DriverCls = trace_driver(LibvirtDriver, "compute")       # a class
    self.client = trace_driver(client, "cinder", remote=True)  # CLIENT spans

Each call of a public method becomes a span ``<name>.<method>`` (INTERNAL, or
CLIENT with ``remote=True``) with ``code.function.name`` (the fully qualified
method: class and method) and ``openstack.driver.name``.
Arguments and results are recorded only when revealed (``record_arguments``
here, or the live ``[profiler] trace_driver_arguments`` switch), masked and
bounded by :mod:`os_trace_plugins.drivers._masking`.  With ``[profiler]
trace_drivers`` off, every wrapper is a straight call-through.

What is returned:

* **an instance** -> a proxy (:mod:`._proxy`): the driver object itself is not
  modified; ``isinstance`` and attribute reads/writes behave as before.
* **a class** -> a *subclass* with the same name, module and qualname whose
  traced methods call the originals; the original class is not modified, so
  other users of it are unaffected and dropping the subclass drops the
  tracing.  Static methods, class methods and properties are inherited
  unchanged (traced only with ``trace_static_methods`` /
  ``trace_class_methods``).  Instances of it do not pickle by name; wrap the
  instance instead when the driver must be pickled.
* **a module** (a DB API backend) -> a proxy tracing its public functions.

Anything else (``None``, numbers, strings, containers, functions) raises
``TypeError`` at wrap time: a function is traced with
:func:`os_trace_plugins.drivers.trace`.  Wrapping something already traced
returns it unchanged.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Iterable
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from os_trace_plugins._version import __version__
from os_trace_plugins.drivers import _proxy
from os_trace_plugins.drivers._callsite import ASYNC, TRACER_NAME, CallSite
from os_trace_plugins.drivers._functions import MARK, members, wrap_function

__all__ = ["trace_driver", "is_traced", "TRACER_NAME"]


T = TypeVar("T")

_NOT_DRIVERS = (bool, int, float, complex, str, bytes, bytearray, memoryview,
                list, tuple, dict, set, frozenset, range, slice)


def is_traced(obj: Any) -> bool:
    """Whether ``obj`` is already a traced proxy, traced class or instance of one."""
    if _proxy.is_proxy(obj):
        return True
    cls = obj if isinstance(obj, type) else type(obj)
    return bool(cls.__dict__.get(MARK, False))


def _check(obj: Any) -> None:
    if obj is None or isinstance(obj, _NOT_DRIVERS):
        raise TypeError(
            f"trace_driver() wraps a driver class, instance or module; got "
            f"{type(obj).__name__} {obj!r:.60}")
    if inspect.isroutine(obj) or isinstance(obj, functools.partial):
        raise TypeError(
            f"trace_driver() wraps a driver class, instance or module; got the "
            f"function {getattr(obj, '__qualname__', obj)!r}: trace a function "
            f"with os_trace_plugins.drivers.trace(name)(function)")


def _qualified(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    return f"{obj.__module__}.{obj.__qualname__}"


def _site(tracer: trace.Tracer | None, name: str, qual: str, method: str, fn: Any,
          kind: SpanKind, extra: dict[str, Any], reveal_args: bool | None,
          reveal_result: bool | None, skip_first: bool, self_in_args: bool,
          ) -> CallSite:
    # Two attributes only: each costs the SDK ~15 % of a bare span; the class
    # and method are in code.function.name, the method also ends the span name.
    attributes = dict(extra)
    attributes.update({"code.function.name": f"{qual}.{method}",
                       "openstack.driver.name": name})
    return CallSite(tracer, f"{name}.{method}", kind, attributes, fn,
                    reveal_args=reveal_args, reveal_result=reveal_result,
                    skip_first=skip_first, self_in_args=self_in_args)


def trace_driver(obj_or_cls: T, name: str | None = None, *, remote: bool = False,
                 record_arguments: bool | None = None,
                 record_result: bool | None = None,
                 trace_private: bool = False, trace_static_methods: bool = False,
                 trace_class_methods: bool = False,
                 methods: Iterable[str] | None = None,
                 attributes: dict[str, Any] | None = None,
                 tracer: trace.Tracer | None = None,
                 tracer_provider: trace.TracerProvider | None = None) -> T:
    """Wrap a driver instance, class or module so its method calls are spans.

    :param name: span name prefix (default: the class or module name).
    :param remote: CLIENT spans (the driver talks to a remote service).
    :param record_arguments: True/False overrides the live
        ``trace_driver_arguments`` switch for this driver; None follows it.
    :param record_result: likewise for results (None: as arguments).
    :param trace_private: also trace ``_private`` methods (never dunders).
    :param methods: trace exactly these names (dunders allowed).
    :param attributes: static attributes added to every span.
    """
    _check(obj_or_cls)
    if is_traced(obj_or_cls):
        return obj_or_cls
    if tracer is None and tracer_provider is not None:
        tracer = tracer_provider.get_tracer(TRACER_NAME, __version__)
    kind = SpanKind.CLIENT if remote else SpanKind.INTERNAL
    extra = dict(attributes or {})
    names = list(methods) if methods is not None else None
    opts = {"private": trace_private, "static": trace_static_methods,
            "classmethods": trace_class_methods, "names": names}

    if isinstance(obj_or_cls, type):
        cls = obj_or_cls
        label = name or cls.__name__
        return _traced_subclass(cls, label, tracer, kind, extra, record_arguments,
                                record_result, opts)  # type: ignore[return-value]

    obj: Any = obj_or_cls
    if isinstance(obj, types.ModuleType):
        label = name or obj.__name__
        found = _module_functions(obj, trace_private, names)
        qual, proxied_cls = obj.__name__, type(obj)
    else:
        proxied_cls = type(obj)
        label = name or proxied_cls.__name__
        found = members(proxied_cls, **opts)  # type: ignore[arg-type]
        qual = _qualified(proxied_cls)
    sites: dict[str, CallSite] = {}
    for method, (mkind, raw) in found.items():
        fn = raw.__func__ if mkind in ("static", "class") else raw
        sites[method] = _site(tracer, label, qual, method, fn, kind, extra,
                              record_arguments, record_result,
                              skip_first=mkind != "static", self_in_args=False)
    proxy_cls = _proxy.proxy_class(
        proxied_cls, {m: s.mode is ASYNC for m, s in sites.items()})
    return proxy_cls(obj, sites)  # type: ignore[no-any-return]


def _module_functions(mod: types.ModuleType, private: bool,
                      names: list[str] | None) -> dict[str, tuple[str, Any]]:
    found: dict[str, tuple[str, Any]] = {}
    for attr, value in vars(mod).items():
        if names is not None:
            if attr not in names:
                continue
        elif attr.startswith("__") or (attr.startswith("_") and not private):
            continue
        if inspect.isfunction(value) and value.__module__ == mod.__name__:
            found[attr] = ("static", staticmethod(value))
    return found


def _traced_subclass(cls: type, label: str, tracer: trace.Tracer | None, kind: SpanKind,
                     extra: dict[str, Any], reveal_args: bool | None,
                     reveal_result: bool | None, opts: dict[str, Any]) -> type:
    qual = _qualified(cls)
    ns: dict[str, Any] = {
        "__module__": cls.__module__, "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__, MARK: True, "__os_trace_plugins_original__": cls,
        "__slots__": (),  # same instance layout as the driver's class
    }
    for method, (mkind, raw) in members(cls, **opts).items():
        fn = raw.__func__ if mkind in ("static", "class") else raw
        site = _site(tracer, label, qual, method, fn, kind, extra, reveal_args,
                     reveal_result, skip_first=mkind != "static",
                     self_in_args=mkind == "method")
        wrapped = wrap_function(site, fn, "trace_drivers")
        if mkind == "static":
            ns[method] = staticmethod(wrapped)
        elif mkind == "class":
            ns[method] = classmethod(wrapped)
        else:
            ns[method] = wrapped
    try:
        return types.new_class(cls.__name__, (cls,), {}, lambda body: body.update(ns))
    except Exception as exc:  # a metaclass or __init_subclass__ that refuses
        raise TypeError(f"trace_driver() cannot subclass {qual}: {exc}; wrap an "
                        f"instance of it instead") from exc
