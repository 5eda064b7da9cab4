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

from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind

from os_trace_plugins import _flagged, _safety
from os_trace_plugins._bounds import cut
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.rpc import _attrs
from os_trace_plugins.rpc import _carrier as carrier
from os_trace_plugins.rpc._client import (
    begin_send,
    producer_wrapper,
    sent_parts,
    with_ctxt,
)
from os_trace_plugins.rpc._server import Started, begin_receive, end_receive, enter, resume

if TYPE_CHECKING:
    from os_trace_plugins._hooks import Hook
    from os_trace_plugins._patching import Wrapper

__all__ = ["make_send_notification", "make_dispatch", "make_batch_dispatch"]


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
            attrs[f"oslo_messaging.notification.{key}"] = cut(str(value))
    message_id = message.get("message_id")
    if message_id:
        attrs["messaging.message.id"] = cut(str(message_id))
    attrs.update(extra)
    span.set_attributes(_attrs.context_attributes(ctxt, attrs))


def _begin_send(hook: Hook, transport: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> tuple[Span | None, tuple[Any, ...], dict[str, Any]]:
    target, ctxt, message = sent_parts(args, kwargs)
    msg = _message(message)
    span, out = begin_send(hook, ctxt, f"{msg.get('event_type') or 'notification'} publish",
                           SpanKind.PRODUCER)
    if span is not None:
        topic = getattr(target, "topic", None)
        _safety.safe_call("notification producer attributes", _notification_attributes,
                          span, _attrs.system_of_transport(transport), "send", msg, ctxt,
                          **({"messaging.destination.name": str(topic)} if topic else {}))
    if out is not ctxt:
        args, kwargs = with_ctxt(args, kwargs, out)
    return span, args, kwargs


def make_send_notification(hook: Hook) -> Wrapper:
    """The ``Transport._send_notification`` wrapper (wrapt signature)."""
    return producer_wrapper(hook, "trace_notifications", _begin_send,
                            "notification producer hook")


def _begin_one(hook: Hook, incoming: Any) -> Started:
    ctxt = incoming.ctxt
    _, parent = resume(incoming, "notification")
    msg = _message(incoming.message)
    span, ctx = begin_receive(hook, cut(f"{msg.get('event_type') or 'notification'}")
                              + " process",
                              SpanKind.CONSUMER, parent)
    if span is not None:
        _safety.safe_call("notification consumer attributes", _notification_attributes,
                          span, _attrs.system_of_incoming(incoming), "process", msg, ctxt)
    return enter(span, ctx)


def _begin_batch(hook: Hook, incoming: Any) -> Started:
    """One span for the batch: a new root (it has many parents) linked to each
    producer; it carries the SQL flag when any of its notifications does."""
    messages = list(incoming) if isinstance(incoming, (list, tuple)) else []
    links: list[Link] = []
    event_types: set[str] = set()
    flagged = False
    for one in messages:
        sc, parent = resume(one, "notification")
        if sc is not None:
            links.append(Link(sc))
        flagged = flagged or _flagged.is_flagged(parent)
        event_type = _message(getattr(one, "message", None)).get("event_type")
        if isinstance(event_type, str):
            event_types.add(event_type)
    name = (cut(next(iter(event_types))) + " process" if len(event_types) == 1
            else "notifications process")
    root = baggage.set_baggage(_flagged.SQL_BAGGAGE_KEY, "1", Context()) if flagged \
        else Context()
    span, ctx = begin_receive(hook, name, SpanKind.CONSUMER, root, links=links)
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
    return enter(span, ctx)


def _make(hook: Hook, begin: Callable[[Hook, Any], Started],
          requeued: Callable[[Any], bool]) -> Wrapper:
    def dispatch(wrapped: Any, instance: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
        incoming = args[0] if args else kwargs.get("incoming")
        if not SWITCHES.trace_notifications:
            try:
                for one in (incoming if isinstance(incoming, list) else (incoming,)):
                    carrier.strip(one)
            except Exception as exc:
                _safety.report_failure("notification consumer hook (strip)", exc)
            return wrapped(*args, **kwargs)
        started: Started | None = None
        try:
            started = begin(hook, incoming)
        except Exception as exc:
            _safety.report_failure("notification consumer hook", exc)
        if started is None:
            return wrapped(*args, **kwargs)
        failure: BaseException | None = None
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if failure is None and started[0] is not None:
                _safety.safe_call("notification consumer hook (result)", _set_requeued,
                                  started[0], requeued, result)
            _safety.safe_call("notification consumer hook (end)", end_receive,
                              started, failure)
        return result

    return dispatch


def _set_requeued(span: Span, requeued: Callable[[Any], bool], result: Any) -> None:
    if requeued(result):
        span.set_attribute("oslo_messaging.notification.requeued", True)


def make_dispatch(hook: Hook) -> Wrapper:
    """The ``NotificationDispatcher.dispatch`` wrapper."""
    return _make(hook, _begin_one, lambda result: result == "requeue")


def make_batch_dispatch(hook: Hook) -> Wrapper:
    """The ``BatchNotificationDispatcher.dispatch`` wrapper."""
    return _make(hook, _begin_batch, lambda result: bool(result))
