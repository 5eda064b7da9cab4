"""Notifications: PRODUCER span per send, CONSUMER span per handled notification.

* ``Transport._send_notification`` (the ``messaging``/``messagingv2`` notifier
  drivers end there, once per topic, with the serialized, redacted context):
  a PRODUCER span ``<event_type> publish`` and the carrier in the context.
* ``NotificationDispatcher.dispatch``: a CONSUMER span ``<event_type> process``
  around the endpoint callbacks, child of the producer.
* ``BatchNotificationDispatcher.dispatch``: one CONSUMER span for the batch
  (a new root: a batch has many parents) with a link to each producer's span.

Event type, priority and publisher id are attributes; the payload never is.
The dispatchers swallow callback exceptions (logged, message requeued), so a
requeue is recorded as ``oslo_messaging.notification.requeued``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind

from os_trace_plugins import _safety
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.rpc import _attrs, carrier
from os_trace_plugins.rpc.client import begin_send, end_span
from os_trace_plugins.rpc.server import begin_receive, end_receive, resume, resume_message

if TYPE_CHECKING:
    from os_trace_plugins._hooks import Hook
    from os_trace_plugins.rpc._patch import Patch

__all__ = ["make_send_notification", "make_dispatch", "make_batch_dispatch"]

Factory = Callable[[Callable[..., Any], "Patch"], Callable[..., Any]]


def _message(obj: Any) -> Mapping[str, Any]:
    return obj if isinstance(obj, Mapping) else {}


def _notification_attributes(span: Span, system: str, op_type: str,
                             message: Mapping[str, Any], ctxt: Any,
                             **extra: Any) -> None:
    attrs: dict[str, Any] = {
        "messaging.system": system,
        "messaging.operation.type": op_type,
        "messaging.operation.name": "notify" if op_type == "send" else "process",
    }
    for key in ("event_type", "priority", "publisher_id"):
        value = message.get(key)
        if value:
            attrs[f"oslo_messaging.notification.{key}"] = str(value)
    message_id = message.get("message_id")
    if message_id:
        attrs["messaging.message.id"] = str(message_id)
    attrs.update(extra)
    span.set_attributes(_attrs.context_attributes(ctxt, attrs))


def _begin_send(hook: Hook, transport: Any, target: Any, ctxt: Any,
                message: Any) -> tuple[Span | None, Any]:
    msg = _message(message)
    span, out = begin_send(hook, ctxt,
                           lambda: f"{msg.get('event_type') or 'notification'} publish",
                           SpanKind.PRODUCER)
    if span is not None:
        topic = getattr(target, "topic", None)
        _safety.safe_call("notification producer attributes", _notification_attributes,
                          span, _attrs.system_of_transport(transport), "send", msg, ctxt,
                          **({"messaging.destination.name": str(topic)} if topic else {}))
    return span, out


def make_send_notification(hook: Hook) -> Factory:
    """The ``Transport._send_notification`` wrapper factory."""

    def factory(original: Callable[..., Any], patch: Patch) -> Callable[..., Any]:
        def _send_notification(self: Any, target: Any, ctxt: Any, message: Any,
                               *args: Any, **kwargs: Any) -> Any:
            if not SWITCHES.trace_notifications or not patch.active:
                return original(self, target, ctxt, message, *args, **kwargs)
            span: Span | None = None
            try:
                span, ctxt = _begin_send(hook, self, target, ctxt, message)
            except Exception as exc:
                _safety.report_failure("notification producer hook", exc)
            if span is None:
                return original(self, target, ctxt, message, *args, **kwargs)
            try:
                result = original(self, target, ctxt, message, *args, **kwargs)
            except BaseException as exc:
                _safety.safe_call("notification producer hook (end)", end_span, span, exc)
                raise
            _safety.safe_call("notification producer hook (end)", end_span, span, None)
            return result

        return _send_notification

    return factory


def _begin_one(hook: Hook, incoming: Any) -> tuple[Span | None, object]:
    ctxt = incoming.ctxt
    token, sc, parent = resume_message(incoming, "notification")
    if token is not None:  # unsampled trace: no span
        return None, token
    msg = _message(incoming.message)
    span, ctx = begin_receive(
        hook, lambda: f"{msg.get('event_type') or 'notification'} process",
        SpanKind.CONSUMER, parent, sc)
    if span is not None:
        _safety.safe_call("notification consumer attributes", _notification_attributes,
                          span, _attrs.system_of_incoming(incoming), "process", msg, ctxt)
    return span, otel_context.attach(ctx)


def _begin_batch(hook: Hook, incoming: Any) -> tuple[Span | None, object]:
    messages = list(incoming) if isinstance(incoming, (list, tuple)) else []
    links: list[Link] = []
    event_types: set[str] = set()
    for one in messages:
        sc, _ = resume(one, "notification")
        if sc is not None:
            links.append(Link(sc))
        event_type = _message(getattr(one, "message", None)).get("event_type")
        if isinstance(event_type, str):
            event_types.add(event_type)
    name = (f"{next(iter(event_types))} process" if len(event_types) == 1
            else "notifications process")
    # a batch has many parents: a new root, linked to each producer
    span, ctx = begin_receive(hook, name, SpanKind.CONSUMER, Context(), None, links=links)
    if span is not None:
        def attrs() -> None:
            system = (_attrs.system_of_incoming(messages[0]) if messages
                      else "oslo.messaging")
            first = _message(getattr(messages[0], "message", None)) if messages else {}
            first = {k: first.get(k) for k in ("event_type", "priority", "publisher_id")}
            _notification_attributes(span, system, "process",
                                     first if len(event_types) == 1 else {}, None,
                                     **{"messaging.batch.message_count": len(messages)})
        _safety.safe_call("notification batch attributes", attrs)
    return span, otel_context.attach(ctx)


def _make(hook: Hook, begin: Callable[[Hook, Any], tuple[Span | None, object]],
          requeued: Callable[[Any], bool]) -> Factory:
    def factory(original: Callable[..., Any], patch: Patch) -> Callable[..., Any]:
        def dispatch(self: Any, incoming: Any) -> Any:
            if not SWITCHES.trace_notifications or not patch.active:
                try:
                    for one in (incoming if isinstance(incoming, list) else (incoming,)):
                        carrier.strip(one)
                except Exception as exc:
                    _safety.report_failure("notification consumer hook (strip)", exc)
                return original(self, incoming)
            started: tuple[Span | None, object] | None = None
            try:
                started = begin(hook, incoming)
            except Exception as exc:
                _safety.report_failure("notification consumer hook", exc)
            if started is None:
                return original(self, incoming)
            span, token = started
            try:
                result = original(self, incoming)
            except BaseException as exc:
                _safety.safe_call("notification consumer hook (end)", end_receive,
                                  span, token, exc)
                raise
            if span is not None and span.is_recording():
                _safety.safe_call("notification consumer hook (result)", _set_requeued,
                                  span, requeued(result))
            _safety.safe_call("notification consumer hook (end)", end_receive,
                              span, token, None)
            return result

        return dispatch

    return factory


def _set_requeued(span: Span, requeued: bool) -> None:
    if requeued:
        span.set_attribute("oslo_messaging.notification.requeued", True)


def make_dispatch(hook: Hook) -> Factory:
    """The ``NotificationDispatcher.dispatch`` wrapper factory."""
    return _make(hook, _begin_one, lambda result: result == "requeue")


def make_batch_dispatch(hook: Hook) -> Factory:
    """The ``BatchNotificationDispatcher.dispatch`` wrapper factory."""
    return _make(hook, _begin_batch, lambda result: bool(result))
