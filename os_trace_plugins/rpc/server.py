"""Server side: resume the caller's trace around the endpoint method.

The hook wraps ``RPCDispatcher.dispatch``: both executors (threading and
eventlet) call it once per message, it raises the endpoint's exceptions
(``ExpectedException`` for those declared with
``oslo_messaging.expected_exceptions``), and it is where the service
serializer's ``deserialize_context`` runs, so the trace keys are stripped
from ``incoming.ctxt`` just before.

The span (SERVER for a call, CONSUMER for a cast or fanout) is made current
for exactly the dispatch and always detached in ``finally``: a reused worker
thread starts the next message from an empty context, never from the previous
message's trace (OSProfiler's thread-local bug).  A message without a carrier
starts a new root (sampled per ``sampling_rate``) rather than inheriting
whatever the worker thread had.

Hot path: a message that carries nothing but an unsampled ``traceparent``
(the common case behind an API that samples a fraction of its requests) is
resumed by :func:`resume_unsampled` (one pattern match, a context attach) and
gets no span; a message without a carrier is a new root decided before the
SDK is asked (:func:`~os_trace_plugins.export.presample.start_root`), so a
dropped one costs no SDK span either.

A garbled carrier is ignored with one rate-limited log line; the message is
delivered.  Trace keys are stripped even with ``trace_rpc`` off, so a strict
context class never sees them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind

from os_trace_plugins import _safety
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.export.presample import start_root
from os_trace_plugins.rpc import _attrs, carrier

if TYPE_CHECKING:
    from os_trace_plugins._hooks import Hook
    from os_trace_plugins.rpc._patch import Patch

__all__ = ["make_dispatch", "resume", "resume_unsampled", "resume_message", "begin_receive",
           "end_receive", "BAD_CARRIER_LOG", "report_bad_carrier"]

_SPAN_KEY = carrier._SPAN_KEY  # the context key of the span (None: another API)

_EMPTY = Context()

LOG = logging.getLogger("os_trace_plugins.rpc")

#: One line per minute for garbled carriers from the outside.
BAD_CARRIER_LOG = _safety.RateLimitedLog(LOG)

Started = tuple[Span | None, object]


def report_bad_carrier(what: str, problem: str) -> None:
    BAD_CARRIER_LOG.warning(
        "rpc-carrier", "os_trace_plugins: ignoring the trace carrier of an incoming %s "
        "(it is delivered, traced as a new root): %s", what, problem)


def resume(incoming: Any, what: str) -> tuple[SpanContext | None, Context]:
    """Extract the carrier of ``incoming`` and strip it; ``(remote sc, parent)``.

    A problem with the carrier is logged (rate-limited) and the carrier
    ignored; ``what`` names the message kind in that line.
    """
    sc, parent, problem = carrier.extract(incoming.ctxt)
    if problem is not None:
        message = incoming.message if isinstance(incoming.message, Mapping) else {}
        name = message.get("method") or message.get("event_type")
        report_bad_carrier(f"{what} ({name})" if name else what, problem)
    carrier.strip(incoming, carrier.ALL_KEYS)
    return sc, parent


def resume_unsampled(incoming: Any) -> object | None:
    """Attach the unsampled remote parent of ``incoming``; its detach token, or None.

    Only for a carrier that is exactly one plain unsampled ``traceparent``
    (:func:`~os_trace_plugins.rpc.carrier.unsampled_parent`); the key is
    stripped (in a copy) and the parent attached.  None: take the full path.
    """
    ctxt = incoming.ctxt
    if type(ctxt) is not dict or _SPAN_KEY is None:
        return None
    parent = carrier.unsampled_parent(ctxt)
    if parent is None:
        return None
    copy = dict(ctxt)
    del copy["traceparent"]
    incoming.ctxt = copy
    return otel_context.attach(Context({_SPAN_KEY: parent}))


def resume_message(incoming: Any, what: str,
                   ) -> tuple[object | None, SpanContext | None, Context]:
    """Resume the trace of ``incoming``: ``(token, remote sc, parent)``.

    A message of an unsampled trace gets no span: its parent is attached here
    (fast path first, then the full :func:`resume`) and the detach token is
    returned with nothing else to do.  Otherwise ``token`` is None and the
    caller starts its span under ``parent`` (``sc`` None: a new root).
    """
    token = resume_unsampled(incoming)
    if token is not None:
        return token, None, _EMPTY
    sc, parent = resume(incoming, what)
    if sc is not None and not sc.trace_flags & 1:
        # calls made by the endpoint carry the decision on
        return otel_context.attach(parent), None, _EMPTY
    return None, sc, parent


def begin_receive(hook: Hook, name: str | Callable[[], str], kind: SpanKind,
                  parent: Context, remote: SpanContext | None,
                  links: list[Link] | None = None) -> tuple[Span | None, Context]:
    """Start the span; returns it (None when it does not record) and the context
    to attach.

    Without a ``remote`` parent the span is a new root, predecided when the
    sampler allows it.  The caller attaches the context as its very last
    step, so nothing that can fail runs between attach and the
    ``try/finally`` that detaches.
    """
    if remote is None:
        span = start_root(hook.tracer, hook.presampler, name, kind, parent, links)
    else:
        span = hook.tracer.start_span(name if isinstance(name, str) else name(),
                                      context=parent, kind=kind, links=links)
    ctx = trace.set_span_in_context(span, parent)
    if not span.is_recording():
        span.end()  # a no-op for the non-recording spans we know; kept for others
        return None, ctx
    return span, ctx


def end_receive(span: Span | None, token: object, exc: BaseException | None,
                expected: bool = False) -> None:
    """Detach (always) and end the span, recording ``exc``."""
    try:
        otel_context.detach(token)  # type: ignore[arg-type]
    finally:
        if span is not None:
            if exc is not None and span.is_recording():
                _attrs.set_error(span, exc, expected=expected)
            span.end()


def _has_w3c(ctxt: dict[str, Any]) -> bool:
    return "traceparent" in ctxt or "baggage" in ctxt or "tracestate" in ctxt


def _is_call(incoming: Any) -> bool:
    # rabbit: reply_q is set for a call; fake: _reply_q; kafka has no calls.
    return (getattr(incoming, "reply_q", None) is not None
            or getattr(incoming, "_reply_q", None) is not None)


def _begin(hook: Hook, incoming: Any) -> tuple[Span | None, object]:
    ctxt = incoming.ctxt
    token, sc, parent = resume_message(incoming, "RPC message")
    if token is not None:  # unsampled trace: no span
        return None, token
    message = incoming.message
    if not isinstance(message, Mapping):
        message = {}
    is_call = _is_call(incoming)

    def name() -> str:
        method = message.get("method")
        namespace = message.get("namespace")
        return f"{namespace}.{method} process" if namespace else f"{method} process"

    span, ctx = begin_receive(hook, name, SpanKind.SERVER if is_call else SpanKind.CONSUMER,
                              parent, sc)
    if span is not None:
        _safety.safe_call("rpc server attributes", _set_attributes, span, incoming,
                          message, ctxt, is_call)
    return span, otel_context.attach(ctx)


def _set_attributes(span: Span, incoming: Any, message: Mapping[str, Any], ctxt: Any,
                    is_call: bool) -> None:
    attrs: dict[str, Any] = {
        "rpc.system": _attrs.RPC_SYSTEM,
        "messaging.system": _attrs.system_of_incoming(incoming),
        "messaging.operation.type": "process",
        "messaging.operation.name": "call" if is_call else "cast",
    }
    for key, attr in (("method", "rpc.method"), ("namespace", "rpc.service"),
                      ("version", "oslo_messaging.version")):
        value = message.get(key)
        if value:
            attrs[attr] = str(value)
    span.set_attributes(_attrs.context_attributes(ctxt, attrs))


def make_dispatch(hook: Hook, expected_exc: type[BaseException],
                  ) -> Callable[[Callable[..., Any], Patch], Callable[..., Any]]:
    """The ``RPCDispatcher.dispatch`` wrapper factory."""

    def factory(original: Callable[..., Any], patch: Patch) -> Callable[..., Any]:
        def dispatch(self: Any, incoming: Any) -> Any:
            if not SWITCHES.trace_rpc or not patch.active:
                try:  # keys another emitter wrote never reach the service serializer
                    ctxt = incoming.ctxt
                    if type(ctxt) is dict and _has_w3c(ctxt):
                        carrier.strip(incoming)
                except Exception as exc:
                    _safety.report_failure("rpc server hook (strip)", exc)
                return original(self, incoming)
            started: Started | None = None
            try:
                started = _begin(hook, incoming)
            except Exception as exc:
                _safety.report_failure("rpc server hook", exc)
            if started is None:
                return original(self, incoming)
            span, token = started
            if span is None:  # unsampled trace: only a context to detach
                try:
                    return original(self, incoming)
                finally:
                    try:
                        otel_context.detach(token)  # type: ignore[arg-type]
                    except Exception as exc:
                        _safety.report_failure("rpc server hook (detach)", exc)
            try:
                result = original(self, incoming)
            except expected_exc as exc:
                inner = getattr(exc, "exc_info", (None, None, None))[1]
                _safety.safe_call("rpc server hook (end)", end_receive, span, token,
                                  inner if isinstance(inner, BaseException) else exc,
                                  expected=True)
                raise
            except BaseException as exc:
                _safety.safe_call("rpc server hook (end)", end_receive, span, token, exc)
                raise
            _safety.safe_call("rpc server hook (end)", end_receive, span, token, None)
            return result

        return dispatch

    return factory
