"""Span attributes shared by the RPC and notification hooks.

Only called when the span records.  ``messaging.system`` names the broker the
transport really talks to (from the driver the transport URL selected:
``rabbit://`` is ``rabbitmq``, ``kafka://`` is ``kafka``); the in-process
``fake://`` driver is reported as ``oslo.messaging.fake``, which is what it is
(no broker).  The server side never sees the transport, so there the class of
the driver's incoming message tells.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span

from os_trace_plugins._bounds import cut

__all__ = [
    "RPC_SYSTEM", "system_of_transport", "system_of_incoming", "context_attributes",
    "set_error", "exception_type",
]

RPC_SYSTEM = "oslo_messaging"

_SYSTEM_BY_SCHEME = {
    "rabbit": "rabbitmq", "kombu": "rabbitmq", "amqp": "rabbitmq",
    "kafka": "kafka", "fake": "oslo.messaging.fake",
}
_SCHEME_BY_MODULE = {
    "oslo_messaging._drivers.impl_rabbit": "rabbit",
    "oslo_messaging._drivers.amqpdriver": "rabbit",
    "oslo_messaging._drivers.impl_kafka": "kafka",
    "oslo_messaging._drivers.impl_fake": "fake",
}
_by_class: dict[type, str] = {}

#: oslo.context ``to_dict()`` key(s) -> attribute; the first key present wins.
_CONTEXT_KEYS = (
    ("openstack.request_id", ("request_id",)),
    ("openstack.global_request_id", ("global_request_id",)),
    ("openstack.project_id", ("project_id", "project", "tenant")),
    ("openstack.user_id", ("user_id", "user")),
)


def _system_of_scheme(scheme: str) -> str:
    scheme = scheme.split("+", 1)[0].lower()
    return _SYSTEM_BY_SCHEME.get(scheme, scheme)


def _system_of_class(cls: type) -> str:
    for klass in cls.__mro__:
        scheme = _SCHEME_BY_MODULE.get(klass.__module__)
        if scheme is not None:
            return _system_of_scheme(scheme)
    return "oslo.messaging"


def system_of_transport(transport: Any) -> str:
    """``messaging.system`` for a Transport (its URL scheme, else its driver)."""
    driver = getattr(transport, "_driver", None)
    url = getattr(driver, "_url", None)
    scheme = getattr(url, "transport", None)
    if isinstance(scheme, str) and scheme:
        return _system_of_scheme(scheme)
    cls = type(driver)
    system = _by_class.get(cls)
    if system is None:
        system = _by_class[cls] = _system_of_class(cls)
    return system


def system_of_incoming(incoming: Any) -> str:
    """``messaging.system`` for a received message, by its driver's class."""
    cls = type(incoming)
    system = _by_class.get(cls)
    if system is None:
        system = _by_class[cls] = _system_of_class(cls)
    return system


def context_attributes(ctxt: Any, into: dict[str, Any]) -> dict[str, Any]:
    """Add the ``openstack.*`` ids of a serialized oslo.context dict to ``into``."""
    if isinstance(ctxt, Mapping):
        for attr, keys in _CONTEXT_KEYS:
            for key in keys:
                value = ctxt.get(key)
                if value and isinstance(value, str):
                    into[attr] = cut(value)
                    break
    return into


def exception_type(exc: BaseException) -> str:
    """A low-cardinality ``error.type``: the (remote) exception's class name.

    ``RemoteError`` names the remote class in ``exc_type``; an exception
    re-created from ``allowed_remote_exmods`` is a ``<Name>_Remote`` subclass.
    """
    remote = getattr(exc, "exc_type", None)
    if isinstance(remote, str) and remote and type(exc).__name__ == "RemoteError":
        return remote
    cls = type(exc)
    if cls.__name__.endswith("_Remote"):
        cls = cls.__mro__[1]
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def set_error(span: Span, exc: BaseException, expected: bool = False) -> None:
    """Record ``exc``; an expected exception is an event, not an error status."""
    from opentelemetry.trace import Status, StatusCode

    from os_trace_plugins._errors import record_exception, redact

    record_exception(span, exc, escaped=not expected)
    if expected:
        span.set_attribute("oslo_messaging.expected_exception", exception_type(exc))
        return
    span.set_attribute("error.type", exception_type(exc))
    if type(exc).__name__ == "RemoteError":
        span.set_attribute("rpc.remote_exception.type", exception_type(exc))
    span.set_status(Status(StatusCode.ERROR, redact(f"{type(exc).__name__}: {exc}")[:256]))
