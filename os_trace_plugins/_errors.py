"""How every hook records a failure on a span, the same way everywhere.

``error.type`` is the fully qualified exception class (``builtins`` ones
bare: ``ValueError``, ``psycopg2.errors.UndefinedTable``), as the semantic
conventions ask for a low-cardinality, unambiguous value; the exception
itself becomes an ``exception`` event and the span status ERROR with a
bounded description.  One place, so an operator's query for
``error.type = "requests.exceptions.ConnectionError"`` finds it from every hook.
"""

from __future__ import annotations

from opentelemetry.trace import Span, Status, StatusCode

__all__ = ["qualified_name", "error_type", "record_error"]

_DESCRIPTION_MAX = 256


def qualified_name(cls: type) -> str:
    """``module.Qualname``, or the bare name for builtins and ``__main__``."""
    module = cls.__module__
    if module in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def error_type(exc: BaseException) -> str:
    """The ``error.type`` value of ``exc``."""
    return qualified_name(type(exc))


def record_error(span: Span, exc: BaseException, *, escaped: bool = True,
                 type_name: str | None = None) -> None:
    """Mark ``span`` failed by ``exc`` (when it records); ``type_name`` overrides."""
    if not span.is_recording():
        return
    span.set_attribute("error.type", type_name or error_type(exc))
    span.record_exception(exc, escaped=escaped)
    span.set_status(Status(StatusCode.ERROR,
                           f"{type(exc).__name__}: {exc}"[:_DESCRIPTION_MAX]))
