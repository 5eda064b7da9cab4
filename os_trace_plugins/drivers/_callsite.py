"""One traced call site: the span around a sync, generator or async call.

Shared by :func:`~os_trace_plugins.drivers.trace_driver` and the
``trace``/``trace_cls`` decorators.  The host's call is always made outside
our guard, so its exceptions propagate as the same object with the same
traceback; everything we do around it (starting the span, rendering
arguments, recording the error) runs under :mod:`os_trace_plugins._safety`.

Every call inside a trace asks the provider's sampler through
``Tracer.start_span`` (an unsampled parent usually means an unsampled
child, but the sampler decides, not us); outside any trace the call gets no
span unless ``[profiler] driver_root_spans`` asks for roots.

Cost: the static attributes are set one by one on a recording span after the
start (start-time attributes go through the sampler result and the SDK's
recursive mapping clean, about three times the cost), the context is
attached with ``context.attach`` rather than the slower
``start_as_current_span`` context manager, and arguments are rendered only
when revealed *and* the span records.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from os_trace_plugins import _safety, _sampling
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins._version import __version__
from os_trace_plugins.drivers import _generators
from os_trace_plugins.drivers import _masking as masking
from os_trace_plugins.drivers._request_context import context_position, record_context
from os_trace_plugins.drivers._spans import end_span, record_error

__all__ = ["CallSite", "TRACER_NAME", "ARG_PREFIX", "RESULT_ATTR", "SYNC", "GENERATOR",
           "ASYNC", "ASYNC_GENERATOR", "mode_of"]

LOG = logging.getLogger(__name__)

TRACER_NAME = "os_trace_plugins.drivers"
ARG_PREFIX = "openstack.arg."
RESULT_ATTR = "openstack.result"

SYNC, GENERATOR, ASYNC, ASYNC_GENERATOR = "sync", "generator", "async", "async_generator"

_attach = otel_context.attach
_detach = otel_context.detach
_set_span = trace.set_span_in_context
_get_provider = trace.get_tracer_provider
_get_current_span = trace.get_current_span
_get_current = otel_context.get_current


def _no_span() -> bool:
    """True when the call gets no span: outside any trace while root spans are
    not wanted (``driver_root_spans`` off: OSProfiler's behaviour).  Inside a
    trace, sampled or not, the sampler decides."""
    return not (SWITCHES.driver_root_spans
                or _get_current_span().get_span_context().is_valid)


def mode_of(fn: Callable[..., Any]) -> str:
    """How a callable must be spanned: over the call, the iteration or the await."""
    if inspect.isasyncgenfunction(fn):
        return ASYNC_GENERATOR
    if inspect.iscoroutinefunction(fn):
        return ASYNC
    if inspect.isgeneratorfunction(fn):
        return GENERATOR
    return SYNC


class CallSite:
    """Span name, kind, static attributes and reveal policy of one callable.

    ``reveal_args`` / ``reveal_result``: True records, False never records,
    None follows the live ``[profiler] trace_driver_arguments`` switch.
    ``skip_first``: the signature's first parameter is ``self``/``cls`` (not
    shown); ``self_in_args``: whether the call's ``args`` include it (False
    for a bound method called through a proxy).
    """

    __slots__ = ("_tracer", "_provider", "_fixed", "span_name", "kind", "attributes",
                 "reveal_args", "reveal_result", "fn", "skip_first", "self_in_args",
                 "mode", "run", "context_at", "_signature")

    def __init__(self, tracer: trace.Tracer | None, span_name: str, kind: SpanKind,
                 attributes: dict[str, Any], fn: Callable[..., Any], *,
                 reveal_args: bool | None = None, reveal_result: bool | None = None,
                 skip_first: bool = False, self_in_args: bool = True) -> None:
        # tracer None: follow the global provider (decorators run at import
        # time, before setup() installs it; tests replace it)
        self._fixed = tracer is not None
        self._tracer: trace.Tracer | None = tracer
        self._provider: trace.TracerProvider | None = None
        self.span_name = span_name
        self.kind = kind
        self.attributes = attributes
        self.fn = fn
        self.reveal_args = reveal_args
        self.reveal_result = reveal_result
        self.skip_first = skip_first
        self.self_in_args = self_in_args
        self.mode = mode_of(fn)
        #: the call method for this mode, resolved once
        self.run: Callable[..., Any] = {
            SYNC: self.call_sync, ASYNC: self.call_async, GENERATOR: self.call_generator,
            ASYNC_GENERATOR: self.call_async_generator}[self.mode]
        self._signature: inspect.Signature | None | bool = False  # False: not computed
        #: where the oslo.context request context is among the arguments
        self.context_at = context_position(fn, skip_first, self_in_args)

    @property
    def tracer(self) -> trace.Tracer:
        if self._fixed:
            return self._tracer  # type: ignore[return-value]
        provider = _get_provider()
        if provider is not self._provider or self._tracer is None:
            self._tracer = provider.get_tracer(TRACER_NAME, __version__)
            self._provider = provider
        return self._tracer

    # -- arguments ---------------------------------------------------------
    def _args_on(self) -> bool:
        r = self.reveal_args
        return SWITCHES.trace_driver_arguments if r is None else r

    def _result_on(self) -> bool:
        r = self.reveal_result
        return self._args_on() if r is None else r

    def _bound_arguments(self, args: tuple[Any, ...],
                         kwargs: dict[str, Any]) -> dict[str, Any]:
        if self._signature is False:
            try:
                self._signature = inspect.signature(self.fn)
            except (TypeError, ValueError):
                self._signature = None
        sig = self._signature
        prepend = self.skip_first and not self.self_in_args
        if isinstance(sig, inspect.Signature):
            try:
                bound = (sig.bind(None, *args, **kwargs) if prepend
                         else sig.bind(*args, **kwargs)).arguments
                if self.skip_first and bound:
                    bound.pop(next(iter(bound)))
                return dict(bound)
            except TypeError:
                pass  # the host will raise its own TypeError; show what we can
        shown = args[1:] if self.skip_first and self.self_in_args else args
        out: dict[str, Any] = {f"arg{i}": v for i, v in enumerate(shown)}
        out.update(kwargs)
        return out

    def record_arguments(self, span: Span, args: tuple[Any, ...],
                         kwargs: dict[str, Any]) -> None:
        limit = SWITCHES.driver_argument_max_length
        for name, value in self._bound_arguments(args, kwargs).items():
            span.set_attribute(ARG_PREFIX + name, masking.render(value, name, limit))

    def record_result(self, span: Span, result: Any) -> None:
        span.set_attribute(RESULT_ATTR, masking.render(
            result, None, SWITCHES.driver_argument_max_length))

    # -- spans ---------------------------------------------------------------
    def _start(self, args: tuple[Any, ...], kwargs: dict[str, Any],
               ctx: otel_context.Context | None = None,
               start_time: int | None = None) -> Span:
        span = self.tracer.start_span(self.span_name, context=ctx, kind=self.kind,
                                      start_time=start_time)
        if not span.is_recording():
            return span
        for key, value in self.attributes.items():
            span.set_attribute(key, value)
        if self.context_at is not None:
            _safety.safe_call("recording the request context", record_context,
                              span, args, kwargs, self.context_at)
        if self._args_on():
            _safety.safe_call("recording driver arguments", self.record_arguments,
                              span, args, kwargs)
        return span

    def _finish_ok(self, span: Span, result: Any) -> None:
        if span.is_recording() and self._result_on():
            _safety.safe_call("recording a driver result", self.record_result,
                              span, result)

    def call_sync(self, fn: Callable[..., Any], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
        # the hot path: kept flat (no helper calls) because every call pays it
        ctx = _get_current()
        sc = _get_current_span(ctx).get_span_context()
        if not (sc.is_valid or SWITCHES.driver_root_spans):  # _no_span(), inlined
            return fn(*args, **kwargs)
        try:
            tracer = self._tracer if self._fixed else self.tracer
            # inside an unsampled trace whose sampler drops the span: no span,
            # the parent stays current (os_trace_plugins._sampling); an SDK
            # Tracer carries the sampler its start_span asks
            dropped = _sampling.drops(tracer, ctx, sc, self.span_name, self.kind)
        except Exception as exc:
            _safety.report_failure("starting a driver span", exc)
            dropped = True
        if dropped:
            return fn(*args, **kwargs)
        try:
            span = tracer.start_span(  # type: ignore[union-attr]
                self.span_name, kind=self.kind)
            show_result = False
            if span.is_recording():
                # one by one after the start: start-time attributes and
                # set_attributes() go through the SDK's recursive mapping clean,
                # about three times the cost of set_attribute() per item
                for key, value in self.attributes.items():
                    span.set_attribute(key, value)
                if self.context_at is not None:
                    _safety.safe_call("recording the request context", record_context,
                                      span, args, kwargs, self.context_at)
                reveal = self.reveal_args
                show_args = SWITCHES.trace_driver_arguments if reveal is None else reveal
                reveal = self.reveal_result
                show_result = show_args if reveal is None else reveal
                if show_args:
                    _safety.safe_call("recording driver arguments",
                                      self.record_arguments, span, args, kwargs)
            token = _attach(_set_span(span))
        except Exception as exc:
            _safety.report_failure("starting a driver span", exc)
            return fn(*args, **kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            _detach(token)
            _safety.safe_call("recording a driver error", record_error, span, exc)
            end_span(span)
            raise
        _detach(token)
        if show_result:
            _safety.safe_call("recording a driver result", self.record_result,
                              span, result)
        try:
            span.end()
        except Exception as exc:
            _safety.report_failure("ending a driver span", exc)
        return result

    async def call_async(self, fn: Callable[..., Coroutine[Any, Any, Any]],
                         args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _no_span():
            return await fn(*args, **kwargs)
        try:
            span = self._start(args, kwargs)
            token = _attach(_set_span(span))
        except Exception as exc:
            _safety.report_failure("starting a driver span", exc)
            return await fn(*args, **kwargs)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            _detach(token)
            _safety.safe_call("recording a driver error", record_error, span, exc)
            end_span(span)
            raise
        _detach(token)
        self._finish_ok(span, result)
        end_span(span)
        return result

    def call_generator(self, fn: Callable[..., Generator[Any, Any, Any]],
                       args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Span from the call to exhaustion, close or error.

        The span starts when the generator is first resumed (with the call
        time as start time and the caller's context as parent), so a
        generator that is never iterated leaves no dangling span.
        """
        if _no_span():
            return fn(*args, **kwargs)
        return _generators.traced_generator(self, fn(*args, **kwargs), args, kwargs,
                                            otel_context.get_current(), time.time_ns())

    def call_async_generator(self, fn: Callable[..., AsyncGenerator[Any, Any]],
                             args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _no_span():
            return fn(*args, **kwargs)
        return _generators.traced_async_generator(
            self, fn(*args, **kwargs), args, kwargs, otel_context.get_current(),
            time.time_ns())
