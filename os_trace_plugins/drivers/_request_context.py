"""``openstack.request_id`` & co. from the oslo.context passed to a driver call.

Nova's, Cinder's and Neutron's driver and DB API methods take the request
context as a parameter named ``context`` (or ``ctxt``); when the span
records and that argument is an oslo.context ``RequestContext``, the span
gets ``openstack.request_id``, ``openstack.global_request_id``,
``openstack.project_id`` and ``openstack.user_id``, so a driver span can be
found from a request id in the logs.  The parameter position is found once,
when the call site is built; a callable without such a parameter pays
nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import Span

__all__ = ["CONTEXT_PARAMETERS", "context_position", "record_context"]

CONTEXT_PARAMETERS = ("context", "ctxt", "ctx", "request_context", "req_context")

_FIELDS = (("openstack.request_id", "request_id"),
           ("openstack.global_request_id", "global_request_id"),
           ("openstack.project_id", "project_id"),
           ("openstack.user_id", "user_id"))

try:
    from oslo_context.context import RequestContext as _RequestContext
except ImportError:  # pragma: no cover - oslo.context is optional
    _RequestContext = None  # type: ignore[assignment,misc]


def context_position(fn: Callable[..., Any], skip_first: bool,
                     self_in_args: bool) -> tuple[int, str] | None:
    """(index in the call's positional args, parameter name), or None."""
    if _RequestContext is None:
        return None
    try:  # through functools.wraps layers (nova's @require_context and co.)
        code = getattr(inspect.unwrap(fn), "__code__", None)
    except ValueError:  # a __wrapped__ cycle
        code = None
    if code is None:
        return None
    names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    for i, name in enumerate(names):
        if name in CONTEXT_PARAMETERS:
            if i >= code.co_argcount:  # keyword-only
                return (-1, name)
            return (i - 1 if skip_first and not self_in_args else i, name)
    return None


def record_context(span: Span, args: tuple[Any, ...], kwargs: dict[str, Any],
                   position: tuple[int, str]) -> None:
    index, name = position
    value = args[index] if 0 <= index < len(args) else kwargs.get(name)
    if _RequestContext is None or not isinstance(value, _RequestContext):
        return
    for attr, field in _FIELDS:
        v = getattr(value, field, None)
        if v:
            span.set_attribute(attr, str(v))
