"""Server side: resume the caller's trace around the endpoint method.

The hook wraps ``RPCDispatcher.dispatch``: both executors (threading and
eventlet) call it once per message, it raises the endpoint's exceptions
(``ExpectedException`` for those declared with
``oslo_messaging.expected_exceptions``), and it is where the service
serializer's ``deserialize_context`` runs, so the trace keys are stripped
from ``incoming.ctxt`` just before.

The carrier is extracted into a remote ``SpanContext`` (public constructor)
and the span started under it with ``tracer.start_span``: the configured
sampler decides.  An unsampled parent yields the SDK's non-recording span;
its context is still made current, so calls the endpoint makes carry the
decision on.  A message without a carrier is a new root, decided by the
sampler too.

The span (SERVER for a call, CONSUMER for a cast or fanout) is current for
exactly the dispatch and always detached in ``finally``: a reused worker
thread starts the next message from an empty context, never from the
previous message's trace (OSProfiler's thread-local bug).  Around the same
dispatch :func:`os_trace_plugins._flagged.enter` / ``leave`` tell the SQL hook
that a request flagged for SQL tracing is running.

A garbled carrier is ignored with one rate-limited log line; the message is
delivered.  Trace keys are stripped even with ``trace_rpc`` off, so a strict
context class never sees them.

``messaging.destination.name``: a dispatcher never sees its target, so the
``RPCServer`` constructor is wrapped to remember which topic each dispatcher
serves (:func:`remember_target`; a weak map, from the constructor's own
arguments).  A server built before the hook was instrumented has none.
"""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN_CONTEXT, Link, Span, SpanContext, SpanKind

from os_trace_plugins import _flagged, _safety, _sampling
from os_trace_plugins._bounds import cut
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.rpc import _attrs
from os_trace_plugins.rpc import _carrier as carrier

if TYPE_CHECKING:
    from os_trace_plugins._hooks import Hook
    from os_trace_plugins._patching import Wrapper

__all__ = ["make_dispatch", "remember_target", "resume", "begin_receive", "enter",
           "end_receive", "BAD_CARRIER_LOG", "report_bad_carrier", "Started"]

LOG = logging.getLogger("os_trace_plugins.rpc")

#: One line per minute for garbled carriers from the outside.
BAD_CARRIER_LOG = _safety.RateLimitedLog(LOG)

#: (span or None when it does not record, detach token, flagged for SQL)
Started = tuple[Span | None, object, bool]

_W3C_KEYS = frozenset(carrier.W3C_KEYS)

#: dispatcher -> the topic of the RPCServer it serves
_TOPICS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


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
        _report(incoming, what, problem)
    carrier.strip(incoming, carrier.ALL_KEYS)
    return sc, parent


def _report(incoming: Any, what: str, problem: str) -> None:
    message = incoming.message if isinstance(incoming.message, Mapping) else {}
    name = message.get("method") or message.get("event_type")
    report_bad_carrier(f"{what} ({name})" if name else what, problem)


def begin_receive(hook: Hook, name: str, kind: SpanKind, parent: Context,
                  links: list[Link] | None = None, sc: SpanContext | None = None,
                  ) -> tuple[Span | None, Context]:
    """Start the span under ``parent``; return it (None when it does not
    record) and the context to attach.

    ``sc`` is the remote span context of ``parent`` when the caller has it.
    Inside an unsampled trace whose sampler drops this span
    (:func:`os_trace_plugins._sampling.drops`) no span is built and
    ``parent`` itself (the remote parent's non-recording span) is attached.
    """
    if sc is None:
        sc = trace.get_current_span(parent).get_span_context()
    if _sampling.drops(hook.provider, parent, sc, name, kind, None, links):
        return None, parent
    span = hook.tracer.start_span(name, context=parent, kind=kind, links=links)
    ctx = trace.set_span_in_context(span, parent)
    if span.is_recording():
        return span, ctx
    span.end()  # a no-op for the SDK's non-recording span; kept for other SDKs
    return None, ctx


def enter(span: Span | None, ctx: Context, maybe_flagged: bool = True) -> Started:
    """Note a flagged request and attach ``ctx``: the last step before the
    ``try``/``finally`` that calls :func:`end_receive`.

    ``maybe_flagged=False``: the message carried no baggage, so ``ctx``
    cannot carry the SQL flag and the baggage lookup is skipped.
    """
    flagged = _flagged.enter(ctx) if maybe_flagged else False
    try:
        token = otel_context.attach(ctx)
    except BaseException:
        if flagged:
            _flagged.leave(flagged)
        raise
    return span, token, flagged


def end_receive(started: Started, exc: BaseException | None,
                expected: bool = False) -> None:
    """Detach and leave (always), end the span, recording ``exc``."""
    span, token, flagged = started
    try:
        otel_context.detach(token)  # type: ignore[arg-type]
    finally:
        if flagged:
            _flagged.leave(flagged)
        if span is not None:
            if exc is not None and span.is_recording():
                _attrs.set_error(span, exc, expected=expected)
            span.end()


def _begin(hook: Hook, dispatcher: Any, incoming: Any) -> Started:
    # resume() and begin_receive(), inlined for the unsampled fast path (one
    # RPC message: each frame is ~500 CPU instructions)
    ctxt = incoming.ctxt
    maybe_flagged = type(ctxt) is dict and "baggage" in ctxt  # extract reads only this
    sc, parent, problem = carrier.extract(ctxt)
    if problem is not None:
        _report(incoming, "RPC message", problem)
    carrier.strip(incoming, carrier.ALL_KEYS)
    message = incoming.message
    if type(message) is not dict and not isinstance(message, Mapping):
        message = {}
    # rabbit: reply_q is set for a call; fake: _reply_q; kafka has no calls.
    is_call = (getattr(incoming, "reply_q", None) is not None
               or getattr(incoming, "_reply_q", None) is not None)
    method, namespace = message.get("method"), message.get("namespace")
    name = cut(f"{namespace}.{method}" if namespace else f"{method}") + " process"
    kind = SpanKind.SERVER if is_call else SpanKind.CONSUMER
    span: Span | None = None
    if sc is not None and _sampling.drops(hook.provider, parent, sc, name, kind):
        ctx = parent  # the remote parent's non-recording span carries the decision on
    else:
        span, ctx = begin_receive(hook, name, kind, parent, None,
                                  INVALID_SPAN_CONTEXT if sc is None else sc)
        if span is not None:
            _safety.safe_call("rpc server attributes", _set_attributes, span, dispatcher,
                              incoming, message, ctxt, is_call)
    return enter(span, ctx, maybe_flagged)


def _set_attributes(span: Span, dispatcher: Any, incoming: Any,
                    message: Mapping[str, Any], ctxt: Any, is_call: bool) -> None:
    attrs: dict[str, Any] = {
        "rpc.system": _attrs.RPC_SYSTEM,
        "messaging.system": _attrs.system_of_incoming(incoming),
        "messaging.operation.type": "process",
        "messaging.operation.name": "call" if is_call else "cast",
    }
    topic = _TOPICS.get(dispatcher)
    if topic:
        attrs["messaging.destination.name"] = topic
    for key, attr in (("method", "rpc.method"), ("namespace", "rpc.service"),
                      ("version", "oslo_messaging.version")):
        value = message.get(key)
        if value:
            attrs[attr] = cut(str(value))
    span.set_attributes(_attrs.context_attributes(ctxt, attrs))


def remember_target(wrapped: Any, instance: Any, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
    """``RPCServer.__init__(transport, target, dispatcher, ...)`` wrapper:
    note the topic the dispatcher serves (for ``messaging.destination.name``)."""
    result = wrapped(*args, **kwargs)
    _safety.safe_call("rpc server target", _remember, args, kwargs)
    return result


def _remember(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    target = args[1] if len(args) > 1 else kwargs.get("target")
    dispatcher = args[2] if len(args) > 2 else kwargs.get("dispatcher")
    topic = getattr(target, "topic", None)
    if dispatcher is not None and isinstance(topic, str) and topic:
        _TOPICS[dispatcher] = topic


def _expected(exc: BaseException) -> BaseException | None:
    """The endpoint's own exception inside an ``ExpectedException``, else None.

    Looked up in the already imported dispatcher module: the hook imports
    nothing of oslo.messaging.
    """
    module = sys.modules.get("oslo_messaging.rpc.dispatcher")
    cls = getattr(module, "ExpectedException", None)
    if cls is None or not isinstance(exc, cls):
        return None
    inner = getattr(exc, "exc_info", (None, None, None))[1]
    return inner if isinstance(inner, BaseException) else exc


def _end(started: Started, exc: BaseException | None) -> None:
    if exc is None:
        end_receive(started, None)
        return
    inner = _expected(exc)
    if inner is not None:
        end_receive(started, inner, expected=True)
    else:
        end_receive(started, exc)


def make_dispatch(hook: Hook) -> Wrapper:
    """The ``RPCDispatcher.dispatch`` wrapper (wrapt signature) of ``hook``."""

    def dispatch(wrapped: Any, instance: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
        incoming: Any = args[0] if args else kwargs.get("incoming")
        if not SWITCHES.trace_rpc:
            try:  # keys another emitter wrote never reach the service serializer
                ctxt = incoming.ctxt  # carrier.strip's own test, inlined
                if type(ctxt) is dict and not _W3C_KEYS.isdisjoint(ctxt):
                    carrier.strip(incoming)
            except Exception as exc:
                _safety.report_failure("rpc server hook (strip)", exc)
            return wrapped(*args, **kwargs)
        started: Started | None = None
        try:
            started = _begin(hook, instance, incoming)
        except Exception as exc:
            _safety.report_failure("rpc server hook", exc)
        if started is None:
            return wrapped(*args, **kwargs)
        failure: BaseException | None = None
        try:
            return wrapped(*args, **kwargs)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            try:  # safe_call, inlined: one frame less per message
                if failure is None:
                    end_receive(started, None)
                else:
                    _end(started, failure)
            except Exception as exc:
                _safety.report_failure("rpc server hook (end)", exc)

    return dispatch
