"""Caller side: a span per RPC call/cast/fanout, the carrier into the wire context.

The hook wraps ``Transport._send``: every ``RPCClient.call``/``cast`` (and
``prepare()``-d variants) ends there with the *serialized* context dict, after
the service serializer ran, whatever serializer that is.  A ``call`` gets a
CLIENT span over the whole round trip (``_send`` blocks for the reply, so
``MessagingTimeout``, ``RemoteError`` with the remote class, and delivery
failures are recorded on it); ``cast`` and fanout get PRODUCER spans.  The span
is not made current: nothing inside the transport is ours to trace.

Hot path, in order of cost:

* ``trace_rpc`` off: one attribute check and a straight call-through.
* inside an unsampled trace (the API edge decided not to record): no span is
  created; the caller's context is written to the wire as is (sampled flag 0)
  so the server does not start a fresh sampled root.  Inside a message our
  server hook resumed unsampled, the header it received is written back as
  is (:class:`~os_trace_plugins.rpc.carrier.RemoteParent`), not reformatted.
* no trace at all (a periodic task, a thread of its own): a new root, decided
  before the SDK is asked when the sampler is ours
  (:func:`~os_trace_plugins.export.presample.start_root`); a dropped root
  costs no SDK span and still tells the server "not sampled".
* sampled: span, attributes (only when recording), carrier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from os_trace_plugins import _safety
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.export.presample import start_root
from os_trace_plugins.rpc import _attrs, carrier

if TYPE_CHECKING:
    from os_trace_plugins._hooks import Hook
    from os_trace_plugins.rpc._patch import Patch

__all__ = ["make_send", "begin_send", "end_span"]

#: the context key of the span: one dict lookup instead of get_current_span()
_SPAN_KEY = carrier._SPAN_KEY

_CALL, _CAST = SpanKind.CLIENT, SpanKind.PRODUCER


def begin_send(hook: Hook, ctxt: Any, name: str | Callable[[], str],
               kind: SpanKind) -> tuple[Span | None, Any]:
    """Start the producer-side span; return it (None when it would not record)
    and the ctxt to send.

    ``name`` may be a callable so the unsampled and dropped cases do not even
    build it.  A ctxt that is not a mapping cannot carry anything and is sent
    untouched.
    """
    current = otel_context.get_current()
    mapping = type(ctxt) is dict or isinstance(ctxt, Mapping)
    parent: Span | None = current.get(_SPAN_KEY) if _SPAN_KEY is not None \
        else trace.get_current_span(current)  # type: ignore[assignment]
    in_trace = False
    if parent is not None:
        if type(parent) is carrier.RemoteParent:  # resumed unsampled: pass it on
            return None, (carrier.inject(ctxt, None, current, parent.header)
                          if mapping else ctxt)
        psc = parent.get_span_context()
        if psc.is_valid and not psc.trace_flags & 1:
            return None, (carrier.inject(ctxt, psc, current) if mapping else ctxt)
        in_trace = psc.is_valid
    if in_trace:
        span = hook.tracer.start_span(name if isinstance(name, str) else name(),
                                      context=current, kind=kind)
    else:
        span = start_root(hook.tracer, hook.presampler, name, kind, current)
    sc = span.get_span_context()
    if mapping and sc.is_valid:
        ctxt = carrier.inject(ctxt, sc, current)
    if not span.is_recording():
        span.end()  # a no-op for the non-recording spans we know; kept for others
        return None, ctxt
    return span, ctxt


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


def _begin(hook: Hook, transport: Any, target: Any, ctxt: Any, message: Any,
           args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Span | None, Any]:
    wait = args[0] if args else kwargs.get("wait_for_reply")
    if wait:
        op, kind = "call", _CALL
    else:
        op, kind = ("fanout" if getattr(target, "fanout", False) else "cast"), _CAST

    def name() -> str:
        if not isinstance(message, Mapping):
            return f"None {op}"
        method, namespace = message.get("method"), message.get("namespace")
        return f"{namespace}.{method} {op}" if namespace else f"{method} {op}"

    span, out = begin_send(hook, ctxt, name, kind)
    if span is not None:
        _safety.safe_call("rpc caller attributes", _rpc_attributes, span, transport,
                          target, message, ctxt, op)
    return span, out


def make_send(hook: Hook) -> Callable[[Callable[..., Any], Patch], Callable[..., Any]]:
    """The ``Transport._send`` wrapper factory for :class:`~os_trace_plugins._patch.Patch`."""

    def factory(original: Callable[..., Any], patch: Patch) -> Callable[..., Any]:
        def _send(self: Any, target: Any, ctxt: Any, message: Any,
                  *args: Any, **kwargs: Any) -> Any:
            if not SWITCHES.trace_rpc or not patch.active:
                return original(self, target, ctxt, message, *args, **kwargs)
            span: Span | None = None
            try:
                span, ctxt = _begin(hook, self, target, ctxt, message, args, kwargs)
            except Exception as exc:
                _safety.report_failure("rpc caller hook", exc)
            if span is None:
                return original(self, target, ctxt, message, *args, **kwargs)
            try:
                result = original(self, target, ctxt, message, *args, **kwargs)
            except BaseException as exc:
                _safety.safe_call("rpc caller hook (end)", end_span, span, exc)
                raise
            _safety.safe_call("rpc caller hook (end)", end_span, span, None)
            return result

        return _send

    return factory
