"""Small span helpers shared by the call paths: error recording, a guarded end."""

from __future__ import annotations

from opentelemetry.trace import Span

from os_trace_plugins import _safety
from os_trace_plugins._errors import error_type, record_error

__all__ = ["error_type", "record_error", "end_span"]


def end_span(span: Span) -> None:
    try:
        span.end()
    except Exception as exc:  # a broken span processor must not hide the host's result
        _safety.report_failure("ending a driver span", exc)
