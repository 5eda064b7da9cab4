"""Small span helpers shared by the call paths: error recording, a guarded end."""

from __future__ import annotations

from opentelemetry.trace import Span, Status, StatusCode

from os_trace_plugins import _safety

__all__ = ["error_type", "record_error", "end_span"]


def error_type(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def record_error(span: Span, exc: BaseException) -> None:
    if span.is_recording():
        span.set_attribute("error.type", error_type(exc))
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:256]))


def end_span(span: Span) -> None:
    try:
        span.end()
    except Exception as exc:  # a broken span processor must not hide the host's result
        _safety.report_failure("ending a driver span", exc)
