"""Which statements get a span: switches, baggage flag, root policy, the sampler."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import sys
import threading
import unittest
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.trace import StatusCode
from sqlalchemy.engine import Engine

from os_trace_plugins.db import _gate as gate
from os_trace_plugins.db import set_sql_tracing
from tests.sql_helpers import SQLTestCase, attached, flagged_request

_UNSAMPLED_SPAN = trace.NonRecordingSpan(trace.SpanContext(
    0x1234, 0x5678, is_remote=True, trace_flags=trace.TraceFlags(0)))


@contextmanager
def current(ctx: Any) -> Iterator[None]:
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


def unsampled() -> Any:
    """A context whose current span is a valid, unsampled (remote) span."""
    return trace.set_span_in_context(_UNSAMPLED_SPAN)


class SamplingTest(SQLTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.engine = sa.create_engine("sqlite://")  # created before we attach
        self.install(trace_sqlalchemy=True, sql_trace_on_request=False)

    def _query(self, engine: Any, tag: str) -> None:
        with engine.connect() as conn:
            self.assertEqual(conn.exec_driver_sql(f"SELECT '{tag}'").scalar(), tag)

    def _texts(self) -> list[Any]:
        return [s.attributes["db.query.text"] for s in self.sql_spans()]

    def test_sampled_parent_records_unsampled_parent_does_not(self) -> None:
        with self.tracer.start_as_current_span("request"):
            self._query(self.engine, "sampled")
        with current(unsampled()):
            self.assertFalse(gate.wants_sql())
            self._query(self.engine, "unsampled")
        self.assertEqual(self._texts(), ["SELECT 'sampled'"])
        self.assertChildOf(self.sql_spans()[0], self.span("request"))

    def test_every_combination_of_switches_parent_and_flag(self) -> None:
        sampled = self.tracer.start_span("sampled-request")
        parents = {"no span": None, "sampled": sampled, "unsampled": _UNSAMPLED_SPAN,
                   "invalid span": trace.INVALID_SPAN}
        for always, on_request, roots, (pname, parent), flagged in itertools.product(
                (True, False), (True, False), (True, False), parents.items(),
                (True, False)):
            self.bind(trace_sqlalchemy=always, sql_trace_on_request=on_request,
                      sql_root_spans=roots)
            ctx = otel_context.Context()
            if parent is not None:
                ctx = trace.set_span_in_context(parent, ctx)
            if flagged:
                ctx = baggage.set_baggage("os_trace.sql", "1", ctx)
            in_trace = pname == "sampled"
            root = pname in ("no span", "invalid span")
            expected = (always or (on_request and flagged)) and (
                in_trace or (root and roots))
            case = f"always={always} on_request={on_request} roots={roots} " \
                   f"{pname} flagged={flagged}"
            self.exporter.clear()
            with flagged_request(ctx):
                self.assertIs(attached(), always or (on_request and flagged), case)
                self._query(self.engine, "x")
            self.assertEqual(bool(self.sql_spans()), expected, case)
        sampled.end()

    def test_errors_inside_an_unsampled_trace_propagate_without_a_span(self) -> None:
        with self.tracer.start_as_current_span("request"):
            with self.engine.connect() as conn, self.assertRaises(sa.exc.OperationalError):
                conn.exec_driver_sql("SELECT * FROM nope")
        with current(unsampled()):
            with self.engine.connect() as conn, self.assertRaises(sa.exc.OperationalError):
                conn.exec_driver_sql("SELECT * FROM nope_either")
        (span,) = self.sql_spans()
        self.assertEqual(span.status.status_code, StatusCode.ERROR)
        self.assertEqual(span.attributes["error.type"], "sqlite3.OperationalError")

    def test_others_listeners_keep_their_events_on_and_off(self) -> None:
        own = sa.create_engine("sqlite://")
        seen: list[str] = []
        sa.event.listen(own, "before_cursor_execute",
                        lambda conn, cur, stmt, *a: seen.append(stmt))
        cls_seen: list[str] = []

        def foreign(conn: Any, cursor: Any, stmt: str, *args: Any) -> None:
            cls_seen.append(stmt)

        sa.event.listen(Engine, "after_cursor_execute", foreign)
        self.addCleanup(sa.event.remove, Engine, "after_cursor_execute", foreign)
        with current(unsampled()):
            self._query(own, "on-unsampled")
        set_sql_tracing(False)
        self._query(own, "off")
        set_sql_tracing(True)
        with self.tracer.start_as_current_span("request"):
            self._query(own, "on-sampled")
        self.assertEqual(seen, ["SELECT 'on-unsampled'", "SELECT 'off'",
                                "SELECT 'on-sampled'"])
        self.assertEqual(cls_seen, seen)
        self.assertEqual(self._texts(), ["SELECT 'on-sampled'"])

    def test_option_engine_is_traced_like_its_parent(self) -> None:
        opt = self.engine.execution_options(os_trace_test="x")
        with self.tracer.start_as_current_span("request"):
            self._query(opt, "opt-sampled")
        with current(unsampled()):
            self._query(opt, "opt-unsampled")
        self.assertEqual(self._texts(), ["SELECT 'opt-sampled'"])

    def test_threads_sampled_and_unsampled_get_exactly_their_spans(self) -> None:
        engines = [sa.create_engine("sqlite://") for _ in range(2)]
        per_thread, threads_n = 150, 8
        failures: list[BaseException] = []
        start = threading.Barrier(threads_n)

        def work(i: int) -> None:
            engine = engines[i % 2]
            try:
                start.wait(10)
                for n in range(per_thread):
                    if i % 2 == 0:
                        with self.tracer.start_as_current_span(f"t{i}"):
                            with engine.connect() as conn:
                                conn.exec_driver_sql(f"SELECT {i}, {n}")
                    else:
                        with current(unsampled()), engine.connect() as conn:
                            conn.exec_driver_sql(f"SELECT {i}, {n}")
            except BaseException as exc:  # the test's point
                failures.append(exc)

        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)
        try:
            threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        finally:
            sys.setswitchinterval(interval)
        self.assertEqual(failures, [])
        spans = self.sql_spans()
        by_id = {s.context.span_id: s for s in self.spans() if s.context is not None}
        expected = {f"SELECT {i}, {n}" for i in range(0, threads_n, 2)
                    for n in range(per_thread)}
        texts = [s.attributes["db.query.text"] for s in spans]
        self.assertEqual(len(texts), len(expected))
        self.assertEqual(set(texts), expected)
        for span in spans:
            assert span.parent is not None
            parent = by_id[span.parent.span_id]
            self.assertEqual(parent.name, "t" + str(span.attributes["db.query.text"])
                             .split()[1].rstrip(","))


class FlaggedTest(SQLTestCase):
    """trace_sqlalchemy off, per-request tracing permitted: a flagged request attaches."""

    def setUp(self) -> None:
        super().setUp()
        self.engine = sa.create_engine("sqlite://")
        self.install(trace_sqlalchemy=False, sql_trace_on_request=True)

    def _query(self, tag: str) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT '{tag}'")

    def test_flagged_request_gets_spans_per_context(self) -> None:
        self.assertFalse(attached())
        with flagged_request(baggage.set_baggage("os_trace.sql", "1")):
            self.assertTrue(attached())
            self._query("flagged-root-not-wanted")
            self.bind(sql_root_spans=True)
            self._query("flagged-root")
            with self.tracer.start_as_current_span("request"):
                self._query("flagged-sampled")
            with current(baggage.set_baggage("os_trace.sql", "1", unsampled())):
                self._query("flagged-unsampled")
            with current(otel_context.Context()):  # another request, not flagged
                self._query("unflagged")
        self.assertFalse(attached())
        self.assertEqual([s.attributes["db.query.text"] for s in self.sql_spans()],
                         ["SELECT 'flagged-root'", "SELECT 'flagged-sampled'"])
        self.assertChildOf(self.sql_spans()[1], self.span("request"))

    def test_nested_flagged_requests_keep_it_attached_until_the_last(self) -> None:
        flagged = baggage.set_baggage("os_trace.sql", "1")
        with flagged_request(flagged):
            with flagged_request(flagged):
                self.assertTrue(attached())
            self.assertTrue(attached())
        self.assertFalse(attached())

    def test_sighup_withdrawing_permission_while_a_request_runs(self) -> None:
        with flagged_request(baggage.set_baggage("os_trace.sql", "1")):
            self.assertTrue(attached())
            self.bind(sql_trace_on_request=False)
            self.assertFalse(attached())
            with self.tracer.start_as_current_span("request"):
                self._query("not permitted")
        self.assertEqual(self.sql_spans(), [])


@unittest.skipUnless(importlib.util.find_spec("aiosqlite"), "aiosqlite not installed")
class AsyncSamplingTest(SQLTestCase):
    def test_async_engine_sampled_and_unsampled(self) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine("sqlite+aiosqlite://")
        self.install(trace_sqlalchemy=True, sql_trace_on_request=False)

        async def query(tag: str) -> Any:
            async with engine.connect() as conn:
                return (await conn.exec_driver_sql(f"SELECT '{tag}'")).scalar()

        async def work() -> list[Any]:
            out = []
            with self.tracer.start_as_current_span("task"):
                out.append(await query("sampled"))
            with current(unsampled()):
                out.append(await query("unsampled"))
            await engine.dispose()
            return out

        self.assertEqual(asyncio.run(work()), ["sampled", "unsampled"])
        (span,) = self.sql_spans()
        self.assertEqual(span.attributes["db.query.text"], "SELECT 'sampled'")
        self.assertChildOf(span, self.span("task"))
