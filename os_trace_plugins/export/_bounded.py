"""The span processor of ``setup()``: a bounded queue, counted drops, flushes with deadlines.

:class:`BoundedProcessor` sits in front of the SDK's ``BatchSpanProcessor``
and keeps three promises it cannot keep alone, with its public API only:

* **Memory stays bounded and every refused span is counted.**  The SDK's
  queue silently evicts its *oldest* span when full (and logs a line per
  span on SDK 1.30); no public API says how many went.  Here each sampled
  span handed to the queue is counted, and so is each span the exporter
  takes (:class:`~os_trace_plugins.export._outage.AccountingExporter`); when
  the difference reaches ``max_queue_size`` a *new* span is refused, counted
  and reported through the outage log instead, so the SDK's queue never
  overflows.  Cost on the request path: one lock and two integer reads per
  sampled span.
* **A flush has a deadline.**  ``BatchSpanProcessor.force_flush`` ignores its
  timeout and exports every queued batch, each up to ``export_timeout``; its
  ``shutdown`` waits up to 30 s (SDK 1.45) or for ever (1.30) for the worker.
  Here both run on a helper thread the caller waits for at most the
  deadline, and batches taken after the deadline are dropped and counted at
  once, so a black-holing collector cannot hold a process's exit.
* **What was not exported at exit is said once** (:meth:`OutageLog.at_exit`).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanProcessor

from os_trace_plugins.export._outage import AccountingExporter

__all__ = ["BoundedProcessor"]


class BoundedProcessor(SpanProcessor):
    """A ``BatchSpanProcessor`` over ``exporter`` with the promises above."""

    def __init__(self, exporter: AccountingExporter, max_queue_size: int,
                 export_timeout: float, shutdown_timeout: float) -> None:
        self.exporter = exporter
        self.outage = exporter.outage
        self.limit = max_queue_size
        self.shutdown_timeout = shutdown_timeout
        # a queue smaller than the SDK's default batch (512) takes batches its size
        batch_size = max_queue_size if max_queue_size < 512 else None
        self.batch = BatchSpanProcessor(exporter, max_queue_size=max_queue_size,
                                        max_export_batch_size=batch_size,
                                        export_timeout_millis=int(export_timeout * 1000))
        self._lock = threading.Lock()
        #: sampled spans handed to the batch processor (its queue plus what it took)
        self.offered = 0
        self._base = 0  # exporter.taken when the counters last started (fork)
        self._done = False
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)

            def _after_in_child() -> None:
                me = ref()
                if me is not None:
                    me._forked()

            os.register_at_fork(after_in_child=_after_in_child)

    def _forked(self) -> None:
        # the SDK's processor empties its queue in a forked child: so do the counts
        self._lock = threading.Lock()
        self.offered = 0
        self._base = self.exporter.taken

    @property
    def pending(self) -> int:
        """Spans queued or in an export not yet finished (an upper bound)."""
        return max(0, self.offered - (self.exporter.taken - self._base))

    # -- SpanProcessor -------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass  # the batch processor does nothing here either

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None or not ctx.trace_flags.sampled or self._done:
            return
        with self._lock:
            full = self.offered - (self.exporter.taken - self._base) >= self.limit
            if not full:
                self.offered += 1
        if full:
            self.outage.overflowed(1, self.limit)
            return
        self.batch.on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued, for at most ``timeout_millis``."""
        if self._done:
            return False
        seconds = max(0.0, timeout_millis / 1000)
        self.exporter.set_deadline(time.monotonic() + seconds)
        try:
            return _within(seconds, self.batch.force_flush)
        finally:
            self.exporter.set_deadline(None)

    def flush_before_exit(self) -> bool:
        """The flush of a worker about to leave through ``os._exit``."""
        return self.force_flush(int(self.shutdown_timeout * 1000))

    def shutdown(self) -> None:
        """Flush and stop within ``shutdown_timeout``; say what was not exported."""
        if self._done:
            return
        seconds = self.shutdown_timeout
        self.exporter.set_deadline(time.monotonic() + seconds, final=True)
        finished = _within(seconds, self.batch.shutdown)
        self._done = True
        if not finished:  # an export still hangs: abort the exporter's retries
            _within(1.0, self.exporter.shutdown)
        self.outage.at_exit(self.pending if not finished else 0)


def _within(seconds: float, fn: Callable[[], Any]) -> bool:
    """Run ``fn`` on a daemon helper thread; whether it finished (truthily) in time."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(fn())
        except Exception:  # pragma: no cover - the SDK's processor does not raise
            result.append(False)

    helper = threading.Thread(target=run, name="os-trace-flush", daemon=True)
    helper.start()
    helper.join(seconds + 0.05)
    if helper.is_alive():
        return False
    return result[0] is not False
