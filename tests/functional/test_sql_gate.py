"""The per-context gate: SQLAlchemy dispatches only where our listener could record."""

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
from unittest import mock

import sqlalchemy as sa
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.trace import StatusCode
from sqlalchemy.engine import Dialect, Engine

from os_trace_plugins.db import gate, set_sql_tracing, toggle
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


@contextmanager
def calls_to(fn: Any) -> Iterator[list[int]]:
    """Count the calls of the Python function ``fn`` (its code object) meanwhile."""
    code, seen = fn.__code__, []
    previous = sys.getprofile()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is code:
            seen.append(1)

    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(previous)


class GateTest(SQLTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.engine = sa.create_engine("sqlite://")  # created before we attach
        self.install(trace_sqlalchemy=True, sql_trace_on_request=False,
                     sql_root_spans=True)

    def _query(self, engine: Any, tag: str) -> None:
        with engine.connect() as conn:
            self.assertEqual(conn.exec_driver_sql(f"SELECT '{tag}'").scalar(), tag)

    def _texts(self) -> list[Any]:
        return [s.attributes["db.query.text"] for s in self.sql_spans()]

    def test_the_descriptor_is_in_place_only_while_attached(self) -> None:
        self.assertTrue(attached())
        self.assertTrue(gate.is_gate(Engine) and gate.is_gate(Dialect))
        set_sql_tracing(False)
        self.assertIs(Engine.__dict__["_has_events"], False)
        self.assertIs(Dialect.__dict__["_has_events"], False)
        set_sql_tracing(True)
        self.assertTrue(gate.is_gate(Engine) and gate.is_gate(Dialect))
        toggle.reset()
        self.assertIs(Engine.__dict__["_has_events"], False)
        self.assertIs(Dialect.__dict__["_has_events"], False)

    def test_sampled_parent_records_unsampled_parent_shuts_the_gate(self) -> None:
        before = toggle.TOGGLE.listeners.before_cursor_execute
        self.assertIs(self.engine._has_events, True, "no current span: open")
        with self.tracer.start_as_current_span("request"):
            self.assertIs(self.engine._has_events, True)
            self.assertIs(self.engine.dialect._has_events, True)
            self._query(self.engine, "sampled")
        with current(unsampled()):
            self.assertIs(self.engine._has_events, False)
            self.assertIs(self.engine.dialect._has_events, False)
            with calls_to(before) as seen:
                self._query(self.engine, "unsampled")
            self.assertEqual(seen, [], "SQLAlchemy dispatched to our listener")
        with calls_to(before) as seen:  # the same probe does see a wanted statement
            self._query(self.engine, "root")
        self.assertEqual(len(seen), 1)
        self.assertEqual(self._texts(), ["SELECT 'sampled'", "SELECT 'root'"])
        spans = {s.attributes["db.query.text"]: s for s in self.sql_spans()}
        self.assertChildOf(spans["SELECT 'sampled'"], self.span("request"))
        self.assertIsNone(spans["SELECT 'root'"].parent)

    def test_errors_still_reach_handle_error_through_the_dialect_gate(self) -> None:
        with self.tracer.start_as_current_span("request"):
            with self.engine.connect() as conn, self.assertRaises(sa.exc.OperationalError):
                conn.exec_driver_sql("SELECT * FROM nope")
        with current(unsampled()):
            with self.engine.connect() as conn, self.assertRaises(sa.exc.OperationalError):
                conn.exec_driver_sql("SELECT * FROM nope_either")
        (span,) = self.sql_spans()
        self.assertEqual(span.status.status_code, StatusCode.ERROR)
        self.assertEqual(span.attributes["error.type"], "sqlite3.OperationalError")
        self.assertEqual(toggle.TOGGLE.listeners.open, {})

    def test_the_gate_agrees_with_the_listener_in_every_case(self) -> None:
        # probe: an engine with an instance listener, so SQLAlchemy always
        # dispatches and our listener alone decides whether a span is recorded
        probe = sa.create_engine("sqlite://")
        sa.event.listen(probe, "after_cursor_execute", lambda *a: None)
        sampled = self.tracer.start_span("sampled-request")
        invalid = trace.INVALID_SPAN
        parents = {"no span": None, "sampled": sampled, "unsampled": _UNSAMPLED_SPAN,
                   "invalid span": invalid}
        checked = 0
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
            case = f"trace_sqlalchemy={always} on_request={on_request} " \
                   f"root_spans={roots} {pname} flagged={flagged}"
            with flagged_request(ctx):
                if not toggle.TOGGLE.attached:  # neither switch wants anything
                    self.assertFalse(always or (on_request and flagged), case)
                    continue
                gate_open = self.engine._has_events
                self.assertIs(gate_open, gate.wants_sql(), case)
                self.exporter.clear()
                self._query(probe, "probe")
                listener_records = bool(self.sql_spans())
                self.exporter.clear()
                self._query(self.engine, "plain")
                self.assertEqual(bool(self.sql_spans()), listener_records, case)
            self.assertIs(gate_open, listener_records, case)
            checked += 1
        sampled.end()
        self.assertEqual(checked, 40)  # the other 24 leave us detached

    def test_instance_listener_keeps_its_events_in_an_unsampled_trace(self) -> None:
        own = sa.create_engine("sqlite://")
        seen: list[str] = []
        sa.event.listen(own, "before_cursor_execute",
                        lambda conn, cur, stmt, *a: seen.append(stmt))
        self.assertIs(own.__dict__["_has_events"], True, "kept in the instance dict")
        with current(unsampled()):
            self.assertIs(own._has_events, True)
            self.assertIs(self.engine._has_events, False)
            self._query(own, "own")
        self.assertEqual(seen, ["SELECT 'own'"])
        self.assertEqual(self.sql_spans(), [])

    def test_switching_off_restores_plain_false_and_instance_listeners(self) -> None:
        own = sa.create_engine("sqlite://")
        seen: list[str] = []
        # registered while the descriptor is in place
        sa.event.listen(own, "before_cursor_execute",
                        lambda conn, cur, stmt, *a: seen.append(stmt))
        dialect_seen: list[str] = []
        sa.event.listen(own, "do_execute",
                        lambda cur, stmt, params, ctx: dialect_seen.append(stmt))
        set_sql_tracing(False)
        self.assertIs(Engine.__dict__["_has_events"], False)
        self.assertIs(Dialect.__dict__["_has_events"], False)
        self.assertIs(self.engine._has_events, False)
        self.assertIs(own._has_events, True)
        self.assertIs(own.dialect._has_events, True)
        with current(unsampled()):
            self._query(own, "off-unsampled")
        self._query(own, "off")
        self.assertEqual(seen, ["SELECT 'off-unsampled'", "SELECT 'off'"])
        self.assertEqual(dialect_seen, seen)
        self.assertEqual(self.sql_spans(), [])

    def test_option_engine_follows_its_parent(self) -> None:
        opt = self.engine.execution_options(os_trace_test="x")
        self.assertIsNot(opt, self.engine)
        with self.tracer.start_as_current_span("request"):
            self.assertIs(opt._has_events, True)
            self._query(opt, "opt-sampled")
        own_seen: list[str] = []
        with current(unsampled()):
            self.assertIs(opt._has_events, False)
            self._query(opt, "opt-unsampled")
            # an OptionEngine's own listener: SQLAlchemy keeps it in its __dict__
            opt2 = self.engine.execution_options(os_trace_test="y")
            sa.event.listen(opt2, "before_cursor_execute",
                            lambda conn, cur, stmt, *a: own_seen.append(stmt))
            self.assertIs(opt2._has_events, True)
            self.assertIs(self.engine._has_events, False, "the parent stays shut")
            self._query(opt2, "opt2-unsampled")
        self.assertEqual(own_seen, ["SELECT 'opt2-unsampled'"])
        self.assertEqual(self._texts(), ["SELECT 'opt-sampled'"])

    def test_foreign_class_listener_keeps_the_plain_flag(self) -> None:
        seen: list[str] = []

        def foreign(conn: Any, cursor: Any, stmt: str, *args: Any) -> None:
            seen.append(stmt)

        sa.event.listen(Engine, "after_cursor_execute", foreign)  # while attached
        self.addCleanup(sa.event.remove, Engine, "after_cursor_execute", foreign)
        self.assertIs(Engine.__dict__["_has_events"], True)  # SQLAlchemy replaced it
        with current(unsampled()):
            self._query(self.engine, "unsampled")
        set_sql_tracing(False)
        self.assertIs(Engine.__dict__["_has_events"], True)
        self.assertIs(Dialect.__dict__["_has_events"], False, "no foreign dialect listener")
        set_sql_tracing(True)  # attached again with the foreign listener present
        self.assertIs(Engine.__dict__["_has_events"], True)
        self.assertTrue(gate.is_gate(Dialect))
        with current(unsampled()):
            self._query(self.engine, "unsampled-2")
        self.assertEqual(seen, ["SELECT 'unsampled'", "SELECT 'unsampled-2'"])
        self.assertEqual(self.sql_spans(), [])

    def test_a_failing_getter_opens_the_gate(self) -> None:
        with mock.patch.object(gate, "_classify", side_effect=RuntimeError("bug")), \
                current(unsampled()):
            gate._last = (None, gate.ROOT)
            self.assertIs(self.engine._has_events, True)
            self._query(self.engine, "still works")
        self.assertEqual(self.sql_spans(), [], "the listener still said no")

    def test_threads_sampled_and_unsampled_get_exactly_their_spans(self) -> None:
        engines = [sa.create_engine("sqlite://") for _ in range(2)]
        per_thread, threads_n = 150, 8
        failures: list[BaseException] = []
        start = threading.Barrier(threads_n)

        def work(i: int) -> None:
            engine = engines[i % 2]
            sampled_thread = i % 2 == 0
            try:
                start.wait(10)
                for n in range(per_thread):
                    if sampled_thread:
                        with self.tracer.start_as_current_span(f"t{i}"):
                            assert engine._has_events is True
                            with engine.connect() as conn:
                                conn.exec_driver_sql(f"SELECT {i}, {n}")
                    else:
                        with current(unsampled()):
                            assert engine._has_events is False
                            with engine.connect() as conn:
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
        self.assertEqual(toggle.TOGGLE.listeners.open, {})


class FlaggedGateTest(SQLTestCase):
    """trace_sqlalchemy off, per-request tracing permitted: a flagged request attaches."""

    def setUp(self) -> None:
        super().setUp()
        self.engine = sa.create_engine("sqlite://")
        self.install(trace_sqlalchemy=False, sql_trace_on_request=True)

    def _query(self, tag: str) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT '{tag}'")

    def test_flagged_request_gates_per_context(self) -> None:
        with flagged_request(baggage.set_baggage("os_trace.sql", "1")):
            self.assertTrue(attached())
            self.assertIs(self.engine._has_events, False, "no span, no sql_root_spans")
            self._query("flagged-root-not-wanted")
            self.bind(sql_root_spans=True)
            self.assertIs(self.engine._has_events, True, "flagged, no span: root span")
            self._query("flagged-root")
            with self.tracer.start_as_current_span("request"):
                self.assertIs(self.engine._has_events, True)
                self._query("flagged-sampled")
            with current(baggage.set_baggage("os_trace.sql", "1", unsampled())):
                # the listener records nothing in an unsampled trace, flag or not
                self.assertIs(self.engine._has_events, False)
                self._query("flagged-unsampled")
            with current(otel_context.Context()):  # another request, not flagged
                self.assertIs(self.engine._has_events, False)
                self._query("unflagged")
        self.assertFalse(attached())
        self.assertIs(Engine.__dict__["_has_events"], False)
        self.assertEqual([s.attributes["db.query.text"] for s in self.sql_spans()],
                         ["SELECT 'flagged-root'", "SELECT 'flagged-sampled'"])
        self.assertChildOf(self.sql_spans()[1], self.span("request"))

    def test_flag_not_permitted_while_attached_for_another_reason(self) -> None:
        self.bind(trace_sqlalchemy=True, sql_trace_on_request=False)
        with current(baggage.set_baggage("os_trace.sql", "1", unsampled())):
            self.assertIs(self.engine._has_events, False)
            self._query("unsampled")
        self.bind(trace_sqlalchemy=False, sql_trace_on_request=True)
        with flagged_request(baggage.set_baggage("os_trace.sql", "1")):
            self.assertTrue(attached())
            self.bind(sql_trace_on_request=False)  # SIGHUP while the request runs
            self.assertFalse(attached())
            self.assertIs(self.engine._has_events, False)
            self._query("not permitted")
        self.assertEqual(self.sql_spans(), [])


@unittest.skipUnless(importlib.util.find_spec("aiosqlite"), "aiosqlite not installed")
class AsyncGateTest(SQLTestCase):
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
                self.assertIs(engine.sync_engine._has_events, False)
                out.append(await query("unsampled"))
            await engine.dispose()
            return out

        self.assertEqual(asyncio.run(work()), ["sampled", "unsampled"])
        (span,) = self.sql_spans()
        self.assertEqual(span.attributes["db.query.text"], "SELECT 'sampled'")
        self.assertChildOf(span, self.span("task"))
