"""OSProfiler-style ``trace`` / ``trace_cls`` decorators that hide arguments.

For the DB API layer and managers, where the code is ours to decorate::

    from os_trace_plugins.drivers import trace, trace_cls

    @trace("db")
    def instance_get(context, instance_id): ...         # span "db.instance_get"

    @trace_cls("conductor")
    class ComputeTaskManager: ...                        # "conductor.<method>"

The signatures mirror ``osprofiler.profiler.trace``/``trace_cls`` so a
migration is a change of import.  The difference that matters: OSProfiler's
``hide_args`` defaults to False and records ``str(args)``/``str(kwargs)``,
``password=...`` included; here ``hide_args=None`` follows the live ``[profiler]
trace_driver_arguments`` switch (off by default), ``hide_args=False``
reveals, ``hide_args=True`` never reveals, and whatever is revealed is
masked and bounded.  ``hide_result=None`` follows the arguments' decision.

``trace_cls`` patches the class in place, as OSProfiler does (a subclass
would break ``super(ClassName, self)`` calls in the decorated class); it
traces the public methods found along the MRO (``object`` excluded), never
dunders, ``_private`` ones with ``trace_private``, static and class methods
only when asked, properties never.  Decorating an already traced function is
a no-op unless ``allow_multiple_trace=False``, which raises ``ValueError``.
The live switch is ``[profiler] trace_decorated``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry.trace import SpanKind

from os_trace_plugins.drivers._callsite import CallSite
from os_trace_plugins.drivers._functions import MARK, members, wrap_function

__all__ = ["trace", "trace_cls"]

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


def _reveal(hide: bool | None) -> bool | None:
    return None if hide is None else not hide


def _static_attributes(info: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (info or {}).items():
        if isinstance(value, (str, bool, int, float)):
            out[str(key)] = value
        else:
            out[str(key)] = str(value)
    return out


def _already(fn: Any, allow_multiple_trace: bool) -> bool:
    if getattr(fn, MARK, False):
        if not allow_multiple_trace:
            raise ValueError(f"Function '{fn}' has already been traced")
        return True
    return False


def _site(name: str, fn: Callable[..., Any], qual: str, info: dict[str, Any] | None,
          hide_args: bool | None, hide_result: bool | None, kind: SpanKind,
          skip_first: bool) -> CallSite:
    attributes = _static_attributes(info)
    attributes["code.function.name"] = qual
    return CallSite(None, f"{name}.{fn.__name__}", kind, attributes, fn,
                    reveal_args=_reveal(hide_args), reveal_result=_reveal(hide_result),
                    skip_first=skip_first)


def trace(name: str, info: dict[str, Any] | None = None, hide_args: bool | None = None,
          hide_result: bool | None = None, allow_multiple_trace: bool = True, *,
          kind: SpanKind = SpanKind.INTERNAL) -> Callable[[F], F]:
    """Decorate a function: each call is a span ``<name>.<function name>``.

    ``info`` adds static attributes.  Methods decorated inside a class body
    work too (``self`` is never recorded among the arguments).
    """

    def decorator(fn: F) -> F:
        if isinstance(fn, (staticmethod, classmethod)):  # @trace above @staticmethod
            inner = decorator(fn.__func__)  # type: ignore[arg-type]
            return type(fn)(inner)  # type: ignore[return-value]
        if _already(fn, allow_multiple_trace):
            return fn
        qual = f"{fn.__module__}.{fn.__qualname__}"
        params = list(_parameters(fn))
        skip = bool(params) and params[0] in ("self", "cls")
        site = _site(name, fn, qual, info, hide_args, hide_result, kind, skip)
        return wrap_function(site, fn, "trace_decorated")  # type: ignore[return-value]

    return decorator


def _parameters(fn: Callable[..., Any]) -> list[str]:
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    return list(code.co_varnames[:code.co_argcount])


def trace_cls(name: str, info: dict[str, Any] | None = None,
              hide_args: bool | None = None, hide_result: bool | None = None,
              trace_private: bool = False, allow_multiple_trace: bool = True,
              trace_class_methods: bool = False, trace_static_methods: bool = False,
              *, kind: SpanKind = SpanKind.INTERNAL) -> Callable[[C], C]:
    """Decorate a class: each traced method call is a span ``<name>.<method>``."""

    def decorator(cls: C) -> C:
        if not isinstance(cls, type):
            raise TypeError(f"trace_cls() decorates a class; got {type(cls).__name__}")
        found = members(cls, private=trace_private, static=trace_static_methods,
                        classmethods=trace_class_methods)
        for method, (mkind, raw) in found.items():
            fn = raw.__func__ if mkind in ("static", "class") else raw
            if _already(fn, allow_multiple_trace):
                continue
            qual = f"{cls.__module__}.{cls.__qualname__}.{method}"
            site = _site(name, fn, qual, info, hide_args, hide_result, kind,
                         skip_first=mkind != "static")
            site.span_name = f"{name}.{method}"
            wrapped = wrap_function(site, fn, "trace_decorated")
            if mkind == "static":
                setattr(cls, method, staticmethod(wrapped))
            elif mkind == "class":
                setattr(cls, method, classmethod(wrapped))
            else:
                setattr(cls, method, wrapped)
        return cls

    return decorator
