"""``SQLiteSpanExporter``: the writer side of the embedded store.

``setup()`` puts it behind a ``BatchSpanProcessor``, so :meth:`export` runs
on the processor's background thread with a batch of finished spans, never
on a request path.  Each batch is one short ``BEGIN IMMEDIATE`` transaction;
WAL mode and a busy timeout let many processes (every service of a host)
share one file.  Export never raises: a failure is logged once and the batch
is reported as failed to the SDK, which drops it.

The connection is opened lazily on the first export (creating the state
directory), and reopened after a fork.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from os_trace_plugins import _safety
from os_trace_plugins.store import _retention as retention
from os_trace_plugins.store import _schema as schema

__all__ = ["SQLiteSpanExporter", "span_row"]

LOG = logging.getLogger(__name__)

_INSERT_SPAN = (
    "INSERT OR IGNORE INTO spans (trace_id, span_id, parent_id, service, name, kind, "
    "start_ns, end_ns, status_code, status_message, attributes, events, links, "
    "resource, scope) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")

_UPSERT_TRACE = """
INSERT INTO traces (trace_id, start_ns, end_ns, span_count, error_count, root_name,
                    root_service, first_name, first_service)
VALUES (?,?,?,?,?,?,?,?,?)
ON CONFLICT (trace_id) DO UPDATE SET
    start_ns = min(start_ns, excluded.start_ns),
    end_ns = max(end_ns, excluded.end_ns),
    span_count = span_count + excluded.span_count,
    error_count = error_count + excluded.error_count,
    root_name = coalesce(excluded.root_name, root_name),
    root_service = coalesce(excluded.root_service, root_service),
    first_name = CASE WHEN excluded.start_ns < start_ns
                      THEN excluded.first_name ELSE first_name END,
    first_service = CASE WHEN excluded.start_ns < start_ns
                         THEN excluded.first_service ELSE first_service END
"""


_SCALARS = (str, int, float, bool)
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, _SCALARS) or value is None:
        return value
    return str(value)


def _attrs(attributes: Any) -> dict[str, Any]:
    if not attributes:
        return {}
    return {str(k): v if isinstance(v, _SCALARS) else _jsonable(v)
            for k, v in attributes.items()}


def _dumps(value: Any) -> str:
    return _encode(value)


#: resource object -> (service, JSON): a process has one resource, encode it once
_resources: dict[int, tuple[Any, str, str]] = {}


def _resource(resource: Any) -> tuple[str, str]:
    cached = _resources.get(id(resource))
    if cached is not None and cached[0] is resource:
        return cached[1], cached[2]
    attrs = _attrs(resource.attributes) if resource is not None else {}
    service = str(attrs.get("service.name") or "unknown_service")
    if len(_resources) > 64:
        _resources.clear()
    _resources[id(resource)] = (resource, service, _dumps(attrs))
    return service, _resources[id(resource)][2]


def span_row(span: ReadableSpan) -> tuple[Any, ...]:
    """The ``spans`` row of a finished SDK span."""
    ctx = span.context
    assert ctx is not None
    service, resource = _resource(span.resource)
    attributes = _attrs(span.attributes)
    # a process hosting several services names each span's own (see report.model)
    named = attributes.get("service.name")
    if isinstance(named, str) and named:
        service = named
    parent = f"{span.parent.span_id:016x}" if span.parent is not None else None
    start = span.start_time or 0
    end = span.end_time or start
    events = _dumps([{"name": e.name, "time_ns": e.timestamp,
                      "attributes": _attrs(e.attributes)} for e in span.events]) \
        if span.events else "[]"
    links = _dumps([{"trace_id": f"{link.context.trace_id:032x}",
                     "span_id": f"{link.context.span_id:016x}",
                     "attributes": _attrs(link.attributes)} for link in span.links]) \
        if span.links else "[]"
    scope = span.instrumentation_scope.name if span.instrumentation_scope else None
    return (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", parent, service, span.name,
            span.kind.name, start, end, span.status.status_code.name,
            span.status.description, _dumps(attributes), events,
            links, resource, scope)


def _summaries(rows: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], set[tuple[str, str]]]:
    by_trace: dict[str, list[Any]] = {}
    services: set[tuple[str, str]] = set()
    for r in rows:
        trace_id, parent, service, name, start, end, status = (
            r[0], r[2], r[3], r[4], r[6], r[7], r[8])
        services.add((service, trace_id))
        err = 1 if status == StatusCode.ERROR.name else 0
        s = by_trace.get(trace_id)
        if s is None:
            by_trace[trace_id] = [trace_id, start, end, 1, err,
                                  name if parent is None else None,
                                  service if parent is None else None, name, service]
            continue
        if start < s[1]:
            s[1], s[7], s[8] = start, name, service
        s[2] = max(s[2], end)
        s[3] += 1
        s[4] += err
        if parent is None:
            s[5], s[6] = name, service
    return [tuple(s) for s in by_trace.values()], services


def _off_the_hub(fn: Callable[[list[tuple[Any, ...]]], None],
                 rows: list[tuple[Any, ...]]) -> None:
    """Run blocking SQLite work in a real OS thread under eventlet.

    In a monkey-patched service (nova-compute, agents) the batch processor's
    "thread" is a greenthread: a SQLite call, and above all SQLite's busy
    wait for another process's write lock, would freeze every greenthread of
    the service.  eventlet's tpool runs it in a real thread instead.
    """
    if "eventlet" in sys.modules:
        try:
            from eventlet import patcher, tpool
            patched = patcher.is_monkey_patched("thread")
        except Exception:  # a broken or unusual eventlet: run inline
            patched = False
        if patched:
            tpool.execute(fn, rows)
            return
    fn(rows)


class SQLiteSpanExporter(SpanExporter):
    """Export spans into the SQLite store at ``path``."""

    def __init__(self, path: str, max_age_hours: float = 168, max_size_mb: float = 512) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        self.max_age_hours = max_age_hours
        self.max_size_mb = max_size_mb
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._inherited: list[sqlite3.Connection] = []
        self._pid = 0
        self._next_trim = 0.0
        self._shutdown = False
        self._log = _safety.RateLimitedLog(LOG)

    # -- connection ----------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            if self._pid == os.getpid():
                return self._conn
            # inherited across fork: never use it, never close it either (a
            # close in the child could checkpoint and delete the WAL under the
            # parent's open connection); keep it referenced so GC leaves it be
            self._inherited.append(self._conn)
            self._conn = None
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=schema.BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None, check_same_thread=False)
        try:
            schema.configure_writer(conn)
            schema.ensure_schema(conn)
        except BaseException:
            conn.close()
            raise
        self._conn, self._pid = conn, os.getpid()
        return conn

    # -- SpanExporter ----------------------------------------------------------
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        try:
            rows = [span_row(s) for s in spans if s.context is not None]
            with self._lock:
                _off_the_hub(self._store, rows)
            return SpanExportResult.SUCCESS
        except Exception as exc:
            self._log.warning("store-export", "os_trace_plugins: %d spans not written "
                              "to the store %s: %s", len(spans), self.path, exc)
            return SpanExportResult.FAILURE

    def _store(self, rows: list[tuple[Any, ...]]) -> None:
        conn = self._connect()
        self._write(conn, rows)
        self._maybe_trim(conn)

    def _write(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        traces, services = _summaries(rows)
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = conn.total_changes
            conn.executemany(_INSERT_SPAN, rows)
            if conn.total_changes - before != len(rows):  # some were re-exports
                traces = self._recount(conn, [t[0] for t in traces], traces)
            conn.executemany(_UPSERT_TRACE, traces)
            conn.executemany("INSERT OR IGNORE INTO trace_services VALUES (?, ?)",
                             sorted(services))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _recount(conn: sqlite3.Connection, ids: list[str],
                 traces: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """After duplicate spans were ignored, rebuild those summaries from ``spans``."""
        out = []
        for trace_id in ids:
            conn.execute("DELETE FROM traces WHERE trace_id = ?", (trace_id,))
            start, end, count, errors = conn.execute(
                "SELECT min(start_ns), max(end_ns), count(*), "
                "coalesce(sum(status_code = 'ERROR'), 0) FROM spans WHERE trace_id = ?",
                (trace_id,)).fetchone()
            root = conn.execute("SELECT name, service FROM spans WHERE trace_id = ? "
                                "AND parent_id IS NULL LIMIT 1", (trace_id,)).fetchone()
            first = conn.execute("SELECT name, service FROM spans WHERE trace_id = ? "
                                 "ORDER BY start_ns LIMIT 1", (trace_id,)).fetchone()
            out.append((trace_id, start, end, count, errors,
                        root[0] if root else None, root[1] if root else None,
                        first[0], first[1]))
        return out

    def _maybe_trim(self, conn: sqlite3.Connection) -> None:
        now = time.monotonic()
        if now < self._next_trim:
            return
        self._next_trim = now + retention.INTERVAL_S
        removed = retention.trim(conn, self.max_age_hours, self.max_size_mb)
        if removed:
            LOG.info("os_trace_plugins: retention removed %d traces from %s",
                     removed, self.path)

    def trim_now(self) -> int:
        """Apply retention immediately (tests, maintenance)."""
        with self._lock:
            return retention.trim(self._connect(), self.max_age_hours, self.max_size_mb)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        with self._lock:
            self._shutdown = True
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
