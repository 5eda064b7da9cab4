"""Spans over the real life of a generator or async generator.

The span starts when the generator is first resumed (with the call time as
start time and the caller's context as parent), so a generator that is never
iterated leaves no dangling span; it ends when the generator is exhausted,
closed or raises.  Each resumption runs with the span as the current context
and restores the consumer's context before yielding back, so the consumer
never sees our span as current.  ``send``/``throw``/``close`` are relayed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from os_trace_plugins import _safety
from os_trace_plugins.drivers._spans import end_span, record_error

__all__ = ["traced_generator", "traced_async_generator"]

_attach = otel_context.attach
_detach = otel_context.detach
_set_span = trace.set_span_in_context


def traced_generator(site: Any, gen: Generator[Any, Any, Any], args: tuple[Any, ...],
                     kwargs: dict[str, Any], parent: otel_context.Context,
                     t0: int) -> Generator[Any, Any, Any]:
    span = _safety.safe_call("starting a driver span", site._start,
                             args, kwargs, parent, t0)
    ctx = _set_span(span) if span is not None else parent
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            token = _attach(ctx)
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    item = gen.throw(exc)
                else:
                    item = gen.send(to_send)
            except StopIteration as stop:
                if span is not None:
                    site._finish_ok(span, stop.value)
                return stop.value
            finally:
                _detach(token)
            try:
                to_send = yield item
            except GeneratorExit:
                gen.close()
                raise
            except BaseException as exc:
                to_throw = exc
    except GeneratorExit:
        raise
    except BaseException as exc:
        if span is not None:
            _safety.safe_call("recording a driver error", record_error, span, exc)
        raise
    finally:
        if span is not None:
            end_span(span)


async def traced_async_generator(
        site: Any, agen: AsyncGenerator[Any, Any], args: tuple[Any, ...],
        kwargs: dict[str, Any], parent: otel_context.Context,
        t0: int) -> AsyncGenerator[Any, Any]:
    span = _safety.safe_call("starting a driver span", site._start,
                             args, kwargs, parent, t0)
    ctx = _set_span(span) if span is not None else parent
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            token = _attach(ctx)
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    item = await agen.athrow(exc)
                else:
                    item = await agen.asend(to_send)
            except StopAsyncIteration:
                return
            finally:
                _detach(token)
            try:
                to_send = yield item
            except GeneratorExit:
                await agen.aclose()
                raise
            except BaseException as exc:
                to_throw = exc
    except GeneratorExit:
        raise
    except BaseException as exc:
        if span is not None:
            _safety.safe_call("recording a driver error", record_error, span, exc)
        raise
    finally:
        if span is not None:
            end_span(span)
