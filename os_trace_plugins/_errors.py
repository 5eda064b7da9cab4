"""How every hook records a failure on a span, the same way everywhere.

``error.type`` is the fully qualified exception class (``builtins`` ones
bare: ``ValueError``, ``psycopg2.errors.UndefinedTable``), as the semantic
conventions ask for a low-cardinality, unambiguous value; the exception
itself becomes an ``exception`` event and the span status ERROR with a
bounded description.  One place, so an operator's query for
``error.type = "requests.exceptions.ConnectionError"`` finds it from every hook.

Exception texts carry SQL parameter values: SQLAlchemy's
``[parameters: ('hunter2',)]`` line (in the exception an RPC endpoint or an
API raises, and in a ``RemoteError`` that relays it), PostgreSQL's
``DETAIL:  Key (name)=(hunter2) already exists.`` and MySQL's
``Duplicate entry 'hunter2' for key``.  :func:`redact` hides those in the
message, the stack trace and the status description, so an error span keeps
the statement and the reason but not the data (``trace_sqlalchemy_parameters``
is about statement spans; an error message is no back door around it).
"""

from __future__ import annotations

import re
import traceback

from opentelemetry.trace import Span, Status, StatusCode

__all__ = ["qualified_name", "error_type", "record_error", "record_exception", "redact"]

_DESCRIPTION_MAX = 256
_PARAMETERS = re.compile(r"^(\s*)\[parameters: .*$", re.M)
_PG_DETAIL = re.compile(r"^(\s*)DETAIL: .*$", re.M)
_MYSQL_ENTRY = re.compile(r"Duplicate entry '.*?' for key")


def redact(text: str) -> str:
    """``text`` without the SQL parameter values database errors quote."""
    if "[parameters: " in text:
        text = _PARAMETERS.sub(r"\1[parameters hidden]", text)
    if "DETAIL: " in text:
        text = _PG_DETAIL.sub(r"\1DETAIL: (hidden: may quote row values)", text)
    if "Duplicate entry '" in text:
        text = _MYSQL_ENTRY.sub("Duplicate entry '***' for key", text)
    return text


def _text(exc: BaseException) -> str:
    try:
        return redact(str(exc))
    except Exception:  # an exception whose __str__ fails
        return f"<{type(exc).__name__}>"


def record_exception(span: Span, exc: BaseException, *, escaped: bool = True) -> None:
    """The ``exception`` event of ``exc``, its message and stack trace redacted."""
    try:
        stack = redact("".join(traceback.format_exception(type(exc), exc,
                                                          exc.__traceback__)))
    except Exception:
        stack = ""
    span.record_exception(exc, {"exception.message": _text(exc),
                                "exception.stacktrace": stack}, escaped=escaped)


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
    record_exception(span, exc, escaped=escaped)
    span.set_status(Status(StatusCode.ERROR,
                           f"{type(exc).__name__}: {_text(exc)}"[:_DESCRIPTION_MAX]))
