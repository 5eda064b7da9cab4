"""Log correlation: ``%(trace_id)s`` and ``%(span_id)s`` in every log line.

An operator reading a log line wants the trace it belongs to.  The
:class:`TraceContextFilter` sets on each record it sees:

* ``trace_id``: 32 hex digits of the current span's trace id, ``"0"`` when no
  span is current;
* ``span_id``: 16 hex digits, ``"0"`` when no span is current;
* ``trace_sampled``: whether that span is recorded (so a log line can say
  whether looking up its trace will find anything).

A field a record already carries (``extra={"trace_id": ...}``) is kept.
The two ids are also listed in ``record.extra_keys``, so oslo.log's
``JSONFormatter`` and ``FluentFormatter`` put them in their ``extra`` object.

oslo.log: add the fields to the format strings and install the filter once
``log.setup()`` has built the handlers::

    [DEFAULT]
    logging_context_format_string = %(asctime)s.%(msecs)03d %(process)d %(levelname)s
        %(name)s [%(global_request_id)s %(request_id)s %(user_identity)s]
        [trace %(trace_id)s %(span_id)s] %(instance)s%(message)s
    logging_default_format_string = %(asctime)s.%(msecs)03d %(process)d %(levelname)s
        %(name)s [-] [trace %(trace_id)s %(span_id)s] %(instance)s%(message)s

    from oslo_log import log
    from os_trace_plugins import log_correlation
    log.setup(CONF, "nova")
    log_correlation.install()

:func:`install` puts the filter on every handler of the root logger (and, by
default, of every other configured logger): a *handler* filter sees records
propagated from child loggers, a logger filter would not.  It does not use a
log-record factory: a factory that adds ``trace_id`` to every record would make
``logger.info(..., extra={"trace_id": x})`` raise ``KeyError`` in the host.
Call it again after anything that replaces the handlers; it is idempotent.
With ``log_config_append`` (a ``fileConfig`` ini, which has no filters),
call :func:`install` after ``log.setup()`` the same way; a ``dictConfig``
can name the filter directly
(``"()": "os_trace_plugins.log_correlation.TraceContextFilter"``).
"""

from __future__ import annotations

import logging

from opentelemetry import trace

__all__ = ["TraceContextFilter", "install", "uninstall", "NO_ID"]

NO_ID = "0"
_KEYS = ("trace_id", "span_id")

_get_current_span = trace.get_current_span


class TraceContextFilter(logging.Filter):
    """Add ``trace_id``, ``span_id`` and ``trace_sampled`` to records; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            ctx = _get_current_span().get_span_context()
            if ctx.is_valid:
                trace_id = format(ctx.trace_id, "032x")
                span_id = format(ctx.span_id, "016x")
                sampled = ctx.trace_flags.sampled
            else:
                trace_id = span_id = NO_ID
                sampled = False
        except Exception:  # never let logging fail because of us
            trace_id = span_id = NO_ID
            sampled = False
        d = record.__dict__
        if "trace_id" not in d:
            d["trace_id"] = trace_id
        if "span_id" not in d:
            d["span_id"] = span_id
        if "trace_sampled" not in d:
            d["trace_sampled"] = sampled
        # oslo.log's JSONFormatter and FluentFormatter put the keys listed in
        # record.extra_keys into their "extra" object: list ours (a new list,
        # never the caller's)
        keys = d.get("extra_keys")
        if keys is None:
            d["extra_keys"] = list(_KEYS)
        elif isinstance(keys, list) and "trace_id" not in keys:
            d["extra_keys"] = keys + [k for k in _KEYS if k not in keys]
        return True


_FILTER = TraceContextFilter()


def _loggers(all_loggers: bool) -> list[logging.Logger]:
    found = [logging.getLogger()]
    if all_loggers:
        for logger in list(logging.Logger.manager.loggerDict.values()):
            if isinstance(logger, logging.Logger):
                found.append(logger)
    return found


def install(all_loggers: bool = True, logger: logging.Logger | None = None) -> int:
    """Add the filter to the handlers of the root logger (and all loggers).

    ``logger``: only that logger's handlers.  Returns how many handlers got it.
    """
    count = 0
    for lg in [logger] if logger is not None else _loggers(all_loggers):
        for handler in list(lg.handlers):
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
                count += 1
    return count


def uninstall() -> None:
    """Remove the filter from every handler it was added to."""
    for lg in _loggers(True):
        for handler in list(lg.handlers):
            handler.removeFilter(_FILTER)
