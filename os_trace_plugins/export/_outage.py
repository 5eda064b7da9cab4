"""Outage accounting: spans lost to a failing collector are counted, logged once.

A collector that refuses connections, never answers or answers 503 must not
fill a service's log with a line per batch (or per span), and an operator must
still learn how many spans the outage cost.  :class:`AccountingExporter` wraps
the exporter of ``connection_string`` (behind the ``BatchSpanProcessor``, on
its worker thread): an export that fails or raises counts its spans as
dropped; :class:`OutageLog` logs ONE warning when an outage starts (a second
one if a full queue started it and an export then fails, so the line naming
the failing collector is never missing) and ONE info line when an export
succeeds again, with the number of spans dropped
during it (failed exports and, reported by
:class:`os_trace_plugins.export._bounded.BoundedProcessor`, spans refused
because the queue was full).  While an outage lasts, the exporter's own
per-batch lines (``Failed to export span batch ...``, ``Transient error ...
retrying``) are held back by a logging filter on its module loggers: the
first failure's lines, which name the cause, are logged; the repeats are not.

An export never raises out of the wrapper, and once a *deadline* is set (a
flush before a worker exits, shutdown), batches taken after it are dropped
and counted at once instead of waiting on a dead collector.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["OutageLog", "AccountingExporter"]

LOG = logging.getLogger("os_trace_plugins")


class OutageLog:
    """Counters of one export pipeline and its two log lines per outage."""

    def __init__(self, target: str, logger: logging.Logger = LOG) -> None:
        self.target = target
        self._log = logger
        self._lock = threading.Lock()
        self.in_outage = False
        self._started = 0.0
        self._failed = 0  # during the current outage
        self._overflow = 0
        self._told_failing = False
        #: for the life of the pipeline
        self.delivered = 0
        self.failed = 0
        self.overflow = 0
        self.outages = 0

    def _begin(self, cause: str) -> bool:
        """Start an outage unless one is on; whether this call started it."""
        if self.in_outage:
            return False
        self.in_outage = True
        self.outages += 1
        self._started = time.monotonic()
        self._failed = self._overflow = 0
        self._told_failing = False
        return True

    def export_failed(self, count: int, cause: str) -> None:
        with self._lock:
            self.failed += count
            self._begin(cause)
            self._failed += count
            tell, self._told_failing = not self._told_failing, True
        if tell:  # once per outage, also when a full queue started it
            self._log.warning(
                "os_trace_plugins: export to %s is failing (%s): tracing stays on, spans "
                "that cannot be exported are dropped and counted, and export resumes by "
                "itself when the collector is back", self.target, cause)

    def overflowed(self, count: int, limit: int) -> None:
        with self._lock:
            self.overflow += count
            began = self._begin("the export queue is full")
            self._overflow += count
        if began:
            self._log.warning(
                "os_trace_plugins: export to %s cannot keep up: the export queue is full "
                "([profiler] max_queue_size = %d); new spans are dropped and counted until "
                "an export succeeds", self.target, limit)

    def export_succeeded(self, count: int) -> None:
        with self._lock:
            self.delivered += count
            if not self.in_outage:
                return
            self.in_outage = False
            took = time.monotonic() - self._started
            failed, overflow = self._failed, self._overflow
        self._log.info(
            "os_trace_plugins: export to %s is back after %.1f s; %d spans dropped during "
            "the outage (%d in failed exports, %d refused by the full queue)",
            self.target, took, failed + overflow, failed, overflow)

    def at_exit(self, not_exported: int) -> None:
        """The last word at shutdown: what an unfinished outage or the deadline cost."""
        with self._lock:
            ongoing = self.in_outage
            took = time.monotonic() - self._started if ongoing else 0.0
            failed, overflow = self._failed, self._overflow
        if ongoing:
            self._log.warning(
                "os_trace_plugins: exiting while export to %s is failing (for %.1f s): %d "
                "spans dropped during the outage (%d in failed exports, %d refused by the "
                "full queue), %d more not exported by the shutdown deadline",
                self.target, took, failed + overflow, failed, overflow, not_exported)
        elif not_exported:
            self._log.warning(
                "os_trace_plugins: %d spans not exported to %s by the shutdown deadline "
                "([profiler] shutdown_timeout)", not_exported, self.target)


class _HoldRepeats(logging.Filter):
    """Hold back an exporter's own lines while an outage is already reported."""

    def __init__(self, outage: OutageLog) -> None:
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.outage.in_outage


def _exporter_loggers(exporter: SpanExporter) -> list[logging.Logger]:
    """The module loggers of an OpenTelemetry exporter class and its bases
    (the OTLP exporters log through ``logging.getLogger(__name__)``)."""
    names = {cls.__module__ for cls in type(exporter).__mro__
             if cls.__module__.startswith("opentelemetry.exporter.")}
    return [logging.getLogger(name) for name in sorted(names)]


class AccountingExporter(SpanExporter):
    """``delegate`` with failures counted and a deadline for the last exports.

    ``inner`` is the network exporter whose own log lines are held back during
    an outage (``delegate`` may be a wrapper of it, such as the resource stamp).
    """

    def __init__(self, delegate: SpanExporter, outage: OutageLog,
                 inner: SpanExporter | None = None) -> None:
        self.delegate = delegate
        self.outage = outage
        #: spans handed to export() (failed, delivered or in flight)
        self.taken = 0
        self._deadline: float | None = None
        self._closed = False
        self._shut = False
        self._filter = _HoldRepeats(outage)
        self._loggers = _exporter_loggers(inner or delegate)
        for logger in self._loggers:
            logger.addFilter(self._filter)

    def set_deadline(self, deadline: float | None, final: bool = False) -> None:
        """Batches taken after ``deadline`` (time.monotonic) are dropped at once;
        ``final``: for good (shutdown), else until the next call."""
        if self._closed:
            return
        self._deadline = deadline
        self._closed = final

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        count = len(spans)
        self.taken += count  # the processor's worker (or a flush under its lock) only
        deadline = self._deadline
        if deadline is not None and time.monotonic() >= deadline:
            self.outage.export_failed(count, "the shutdown deadline has passed")
            return SpanExportResult.FAILURE
        try:
            result = self.delegate.export(spans)
        except Exception as exc:  # an exporter bug or a transport error it let out
            self.outage.export_failed(count, f"{type(exc).__name__}: {exc}")
            return SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self.outage.export_succeeded(count)
        else:
            self.outage.export_failed(count, "the exporter reported a failure; its own "
                                             "log line above names the cause")
        return result

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.delegate.force_flush(timeout_millis)

    def shutdown(self) -> None:
        if self._shut:
            return
        self._shut = True
        try:
            self.delegate.shutdown()
        finally:
            for logger in self._loggers:
                logger.removeFilter(self._filter)
