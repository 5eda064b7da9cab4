"""Caller side: a span per RPC call/cast/fanout, the carrier into the wire context.

The hook wraps ``Transport._send``: every ``RPCClient.call``/``cast`` (and
``prepare()``-d variants) ends there with the *serialized* context dict, after
the service serializer ran, whatever serializer that is.  A ``call`` gets a
CLIENT span over the whole round trip (``_send`` blocks for the reply, so
``MessagingTimeout``, ``RemoteError`` with the remote class, and delivery
failures are recorded on it); ``cast`` and fanout get PRODUCER spans.  The span
is not made current: nothing inside the transport is ours to trace.

The configured sampler decides every span: ``tracer.start_span(name,
context=current, kind=...)`` always, and the carrier is whatever span context
comes back.  Inside an unsampled trace the SDK returns its non-recording span
(a fresh span id, the parent's trace id and sampled flag 0), so the server
continues the trace unsampled instead of starting a fresh root; with no trace
at all the sampler's root decision travels the same way.  Attributes are
computed only when the span records.  ``trace_rpc`` off costs one attribute
read and the call-through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, SpanKind, get_current_span

from os_trace_plugins import _safety, _sampling
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.rpc import _attrs
from os_trace_plugins.rpc import _carrier as carrier

if TYPE_CHECKING:
    from os_trace_plugins._hooks import Hook
    from os_trace_plugins._patching import Wrapper

__all__ = ["make_send", "producer_wrapper", "begin_send", "end_span", "with_ctxt", "sent_parts"]

_CALL, _CAST = SpanKind.CLIENT, SpanKind.PRODUCER


def begin_send(hook: Hook, ctxt: Any, name: str, kind: SpanKind,
               ) -> tuple[Span | None, Any]:
    """Start the producer-side span; return it (None when it does not record)
    and the ctxt to send.

    Inside an unsampled trace whose sampler drops this span
    (:func:`os_trace_plugins._sampling.drops`) no span is built: the current
    span context travels as it is.  A ctxt that is not a mapping cannot carry
    anything and is sent untouched.
    """
    current = otel_context.get_current()
    sc = get_current_span(current).get_span_context()
    if _sampling.drops(hook.provider, current, sc, name, kind):
        if type(ctxt) is dict or isinstance(ctxt, Mapping):
            ctxt = carrier.inject(ctxt, sc, current, True)
        return None, ctxt
    span = hook.tracer.start_span(name, context=current, kind=kind)
    sc = span.get_span_context()
    if sc.is_valid and (type(ctxt) is dict or isinstance(ctxt, Mapping)):
        ctxt = carrier.inject(ctxt, sc, current)
    if span.is_recording():
        return span, ctxt
    span.end()  # a no-op for the SDK's non-recording span; kept for other SDKs
    return None, ctxt


def with_ctxt(args: tuple[Any, ...], kwargs: dict[str, Any], ctxt: Any,
              ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(target, ctxt, message, ...)`` call arguments with ``ctxt`` replaced."""
    if len(args) >= 2:
        return (args[0], ctxt) + args[2:], kwargs
    return args, {**kwargs, "ctxt": ctxt}


def sent_parts(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, Any]:
    """``(target, ctxt, message)`` of a ``Transport._send*`` call."""
    if len(args) >= 3:
        return args[0], args[1], args[2]
    get = kwargs.get
    return (args[0] if args else get("target"), args[1] if len(args) > 1 else get("ctxt"),
            get("message"))


def end_span(span: Span, exc: BaseException | None) -> None:
    """End a span, recording ``exc`` (if any) as its error."""
    if exc is not None and span.is_recording():
        _attrs.set_error(span, exc)
    span.end()


def _rpc_attributes(span: Span, transport: Any, target: Any, message: Any,
                    ctxt: Any, op: str) -> None:
    attrs: dict[str, Any] = {
        "rpc.system": _attrs.RPC_SYSTEM,
        "messaging.system": _attrs.system_of_transport(transport),
        "messaging.operation.type": "send",
        "messaging.operation.name": op,
    }
    topic = getattr(target, "topic", None)
    if topic:
        attrs["messaging.destination.name"] = str(topic)
    server = getattr(target, "server", None)
    if server:
        attrs["oslo_messaging.target.server"] = str(server)
    if getattr(target, "fanout", False):
        attrs["oslo_messaging.target.fanout"] = True
    exchange = getattr(target, "exchange", None)
    if exchange:
        attrs["oslo_messaging.target.exchange"] = str(exchange)
    if isinstance(message, Mapping):
        for key, attr in (("method", "rpc.method"), ("namespace", "rpc.service"),
                          ("version", "oslo_messaging.version")):
            value = message.get(key)
            if value:
                attrs[attr] = str(value)
    span.set_attributes(_attrs.context_attributes(ctxt, attrs))


def _begin(hook: Hook, transport: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
           ) -> tuple[Span | None, tuple[Any, ...], dict[str, Any]]:
    if len(args) >= 3:  # sent_parts, inlined for the usual positional call
        target, ctxt, message = args[0], args[1], args[2]
    else:
        target, ctxt, message = sent_parts(args, kwargs)
    wait = args[3] if len(args) > 3 else kwargs.get("wait_for_reply")
    if wait:
        op, kind = "call", _CALL
    else:
        op, kind = ("fanout" if getattr(target, "fanout", False) else "cast"), _CAST
    if type(message) is dict or isinstance(message, Mapping):
        method, namespace = message.get("method"), message.get("namespace")
        name = f"{namespace}.{method} {op}" if namespace else f"{method} {op}"
    else:
        name = f"None {op}"
    span, out = begin_send(hook, ctxt, name, kind)
    if span is not None:
        _safety.safe_call("rpc caller attributes", _rpc_attributes, span, transport,
                          target, message, ctxt, op)
    if out is not ctxt:
        if len(args) >= 2:  # with_ctxt, inlined
            args = (args[0], out, *args[2:])
        else:
            args, kwargs = with_ctxt(args, kwargs, out)
    return span, args, kwargs


#: ``begin(hook, transport, args, kwargs) -> (span or None, args, kwargs)``
Begin = Callable[["Hook", Any, tuple[Any, ...], dict[str, Any]],
                 tuple[Span | None, tuple[Any, ...], dict[str, Any]]]


def producer_wrapper(hook: Hook, switch: str, begin: Begin, where: str) -> Wrapper:
    """A wrapt wrapper for a producer-side transport method (RPC send, notify).

    ``switch`` names the live ``[profiler]`` option that turns it on; ``begin``
    starts the span and returns the arguments to send (the carrier in the
    context).  The transport's own call is made outside the guard, and the
    span ends with its outcome.
    """
    failed, ended = where, f"{where} (end)"

    def send(wrapped: Any, instance: Any, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
        if not getattr(SWITCHES, switch):
            return wrapped(*args, **kwargs)
        span: Span | None = None
        try:
            span, args, kwargs = begin(hook, instance, args, kwargs)
        except Exception as exc:
            _safety.report_failure(failed, exc)
        if span is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            _safety.safe_call(ended, end_span, span, exc)
            raise
        _safety.safe_call(ended, end_span, span, None)
        return result

    return send


def make_send(hook: Hook) -> Wrapper:
    """The ``Transport._send`` wrapper (wrapt signature) of ``hook``."""
    return producer_wrapper(hook, "trace_rpc", _begin, "rpc caller hook")
