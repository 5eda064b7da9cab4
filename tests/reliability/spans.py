"""Span bookkeeping the reliability tests share: started vs ended, parent checks."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

__all__ = ["Counting", "foreign_parents"]


class Counting(SpanProcessor):
    """Every span started and every span ended, by span id.

    ``unended()`` after the run is the proof that no span was left open (a
    span never ended is never exported, so comparing exports would miss it).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started: dict[int, str] = {}
        self.ended: set[int] = set()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        sc = span.get_span_context()
        with self._lock:
            self.started[sc.span_id] = span.name

    def on_end(self, span: ReadableSpan) -> None:
        assert span.context is not None
        with self._lock:
            self.ended.add(span.context.span_id)

    def unended(self) -> dict[int, str]:
        with self._lock:
            return {sid: name for sid, name in self.started.items() if sid not in self.ended}


def foreign_parents(spans: Iterable[Any]) -> list[str]:
    """Spans whose parent (seen in ``spans``) belongs to another trace.

    Works on SDK ``ReadableSpan`` and on the dicts the child processes print
    (``trace_id``, ``span_id``, ``parent``).
    """
    rows = []
    for s in spans:
        if isinstance(s, dict):
            rows.append((s["name"], s["trace_id"], s["span_id"], s["parent"]))
        else:
            rows.append((s.name, s.context.trace_id, s.context.span_id,
                         s.parent.span_id if s.parent else None))
    trace_of = {sid: tid for _, tid, sid, _ in rows}
    return [f"{name}: trace {tid:032x}, parent in {trace_of[parent]:032x}"
            for name, tid, _, parent in rows
            if parent is not None and parent in trace_of and trace_of[parent] != tid]
