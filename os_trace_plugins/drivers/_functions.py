"""Wrap one function (or method function) so each call goes through a CallSite.

The switch is read first and alone: with it off the wrapper is one attribute
read and a straight call-through.  Two switches exist: ``trace_drivers`` for
driver wrappers, ``trace_decorated`` for the ``trace``/``trace_cls``
decorators; a wrapper body is generated for each so the hot path reads a
plain attribute rather than a ``getattr`` by name.

Coroutine functions stay coroutine functions (``inspect.iscoroutinefunction``
is still true); generator and async-generator functions return a (traced)
generator, so iteration behaves as before, though ``isgeneratorfunction`` of
the wrapper itself is false.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.drivers._callsite import ASYNC, CallSite

__all__ = ["wrap_function", "MARK", "members"]

#: set on every wrapper we make, so wrapping twice is detected
MARK = "__os_trace_plugins_traced__"


def _sync_drivers(site: CallSite, fn: Callable[..., Any]) -> Callable[..., Any]:
    call = site.run

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not SWITCHES.trace_drivers:
            return fn(*args, **kwargs)
        return call(fn, args, kwargs)
    return wrapper


def _sync_decorated(site: CallSite, fn: Callable[..., Any]) -> Callable[..., Any]:
    call = site.run

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not SWITCHES.trace_decorated:
            return fn(*args, **kwargs)
        return call(fn, args, kwargs)
    return wrapper


def _async(site: CallSite, fn: Callable[..., Any], switch: str) -> Callable[..., Any]:
    call = site.call_async

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not getattr(SWITCHES, switch):
            return await fn(*args, **kwargs)
        return await call(fn, args, kwargs)
    return wrapper


def wrap_function(site: CallSite, fn: Callable[..., Any],
                  switch: str = "trace_drivers") -> Callable[..., Any]:
    """A wrapper of ``fn`` that spans each call through ``site`` while ``switch`` is on."""
    if site.mode is ASYNC:
        wrapper = _async(site, fn, switch)
    elif switch == "trace_drivers":
        wrapper = _sync_drivers(site, fn)
    elif switch == "trace_decorated":
        wrapper = _sync_decorated(site, fn)
    else:
        raise ValueError(f"unknown switch {switch!r}")
    functools.update_wrapper(wrapper, fn)
    setattr(wrapper, MARK, True)
    return wrapper


def members(cls: type, *, private: bool, static: bool, classmethods: bool,
            names: Iterable[str] | None = None) -> dict[str, tuple[str, Any]]:
    """The methods of ``cls`` to trace: name -> (kind, raw class attribute).

    kind is ``method``, ``static`` or ``class``.  The whole MRO is walked (the
    most derived definition wins), ``object`` excluded.  Dunders are traced
    only when listed in ``names``; ``_private`` ones only with ``private``.
    Properties and other descriptors are never traced: they are reached
    unchanged.
    """
    wanted = set(names) if names is not None else None
    found: dict[str, tuple[str, Any]] = {}
    seen: set[str] = set()
    for klass in cls.__mro__:
        if klass is object:
            continue
        for attr, raw in vars(klass).items():
            if attr in seen:
                continue
            seen.add(attr)
            if wanted is not None:
                if attr not in wanted:
                    continue
            elif attr.startswith("__") or (attr.startswith("_") and not private):
                continue
            if isinstance(raw, staticmethod):
                if static or (wanted is not None):
                    found[attr] = ("static", raw)
            elif isinstance(raw, classmethod):
                if classmethods or (wanted is not None):
                    found[attr] = ("class", raw)
            elif callable(raw) and hasattr(raw, "__code__"):
                found[attr] = ("method", raw)
    return found
