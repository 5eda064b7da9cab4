"""The proxy that wraps a driver *instance* without touching it.

``trace_driver(instance)`` returns a proxy rather than patching the object:
the vendor's object (and every other reference to it) stays exactly as it
was, ``__slots__`` objects work, and dropping the proxy drops the tracing.

* ``isinstance(proxy, DriverClass)`` is true: ``__class__`` answers the
  driver's class, which ``isinstance`` (and ``ABCMeta``) consult.
* Attribute reads, writes and deletes go to the driver; ``dir``, ``repr``,
  ``str``, ``==``, ``hash`` and ``bool`` answer as the driver does; the
  container, iterator, context-manager, comparison and call dunders the
  driver's class defines are forwarded, the others are absent as before.
* Traced methods are defined on a proxy class generated once per driver
  class; each call looks the method up on the driver (so a method replaced
  at runtime is the one called) and returns the proxy where the driver
  returned itself (fluent APIs stay traced).
* ``copy.copy``/``deepcopy`` give a traced copy; ``pickle`` stores the bare
  driver.  ``type(proxy)`` and ``proxy is driver`` are what differ.
"""

from __future__ import annotations

import copy
import threading
import weakref
from typing import Any

from os_trace_plugins._switches import SWITCHES

__all__ = ["DriverProxy", "proxy_class", "is_proxy"]

_OWN = frozenset(("__wrapped__", "_otp_sites"))

_OPTIONAL_DUNDERS = (
    "__len__", "__length_hint__", "__iter__", "__next__", "__reversed__",
    "__contains__", "__getitem__", "__setitem__", "__delitem__", "__call__",
    "__enter__", "__exit__", "__aenter__", "__aexit__", "__await__",
    "__aiter__", "__anext__", "__lt__", "__le__", "__gt__", "__ge__",
    "__int__", "__float__", "__index__", "__fspath__",
)


class DriverProxy:
    """Base of the generated proxy classes (see the module docstring)."""

    __slots__ = ("__wrapped__", "_otp_sites", "__weakref__")

    def __init__(self, wrapped: Any, sites: dict[str, Any]) -> None:
        object.__setattr__(self, "__wrapped__", wrapped)
        object.__setattr__(self, "_otp_sites", sites)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance() consults this
        return self.__wrapped__.__class__  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        if name in _OWN:
            raise AttributeError(name)
        return getattr(self.__wrapped__, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.__wrapped__, name, value)

    def __delattr__(self, name: str) -> None:
        if name in _OWN:
            object.__delattr__(self, name)
        else:
            delattr(self.__wrapped__, name)

    def __dir__(self) -> list[str]:
        return dir(self.__wrapped__)

    def __repr__(self) -> str:
        return repr(self.__wrapped__)

    def __str__(self) -> str:
        return str(self.__wrapped__)

    def __format__(self, spec: str) -> str:
        return format(self.__wrapped__, spec)

    def __eq__(self, other: object) -> bool:
        return bool(self.__wrapped__ == _unwrap(other))

    def __ne__(self, other: object) -> bool:
        return bool(self.__wrapped__ != _unwrap(other))

    def __hash__(self) -> int:
        return hash(self.__wrapped__)

    def __bool__(self) -> bool:
        return bool(self.__wrapped__)

    def __copy__(self) -> Any:
        return type(self)(copy.copy(self.__wrapped__), self._otp_sites)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return type(self)(copy.deepcopy(self.__wrapped__, memo), self._otp_sites)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self.__wrapped__.__reduce_ex__(protocol)


def _unwrap(obj: Any) -> Any:
    return obj.__wrapped__ if isinstance(obj, DriverProxy) else obj


def is_proxy(obj: Any) -> bool:
    return isinstance(obj, DriverProxy)


def _forward(dunder: str) -> Any:
    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        target = self.__wrapped__
        result = getattr(target, dunder)(*args, **kwargs)
        return self if result is target else result
    forward.__name__ = dunder
    return forward


def _traced_method(name: str, is_async: bool) -> Any:
    if is_async:
        async def amethod(self: Any, *args: Any, **kwargs: Any) -> Any:
            target = self.__wrapped__
            fn = getattr(target, name)
            if not SWITCHES.trace_drivers:
                return await fn(*args, **kwargs)
            return await self._otp_sites[name].call_async(fn, args, kwargs)
        amethod.__name__ = name
        return amethod

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        target = self.__wrapped__
        fn = getattr(target, name)
        if not SWITCHES.trace_drivers:
            result = fn(*args, **kwargs)
        else:
            result = self._otp_sites[name].run(fn, args, kwargs)
        return self if result is target else result
    method.__name__ = name
    return method


# per driver class (weakly: a class that goes away takes its proxies along),
# per set of traced method names
_cache: weakref.WeakKeyDictionary[type, dict[tuple[Any, ...], type]] = \
    weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def proxy_class(cls: type, methods: dict[str, bool]) -> type:
    """The proxy class for instances of ``cls`` tracing ``methods`` (name -> async)."""
    key = tuple(sorted(methods.items()))
    with _cache_lock:
        found = _cache.get(cls, {}).get(key)
    if found is not None:
        return found
    ns: dict[str, Any] = {"__slots__": (), "__module__": __name__,
                          "__doc__": cls.__doc__}
    for dunder in _OPTIONAL_DUNDERS:
        if any(dunder in vars(k) for k in cls.__mro__ if k is not object):
            ns[dunder] = _forward(dunder)
    for name, is_async in methods.items():
        ns[name] = _traced_method(name, is_async)
    made = type(f"{cls.__name__}TracedProxy", (DriverProxy,), ns)
    with _cache_lock:
        return _cache.setdefault(cls, {}).setdefault(key, made)
