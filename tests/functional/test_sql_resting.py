"""SQL at rest and under switching: oslo.db engines, root statements, the sampler,
broken SQLAlchemy internals, and the no-import property."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import sqlalchemy as sa
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from sqlalchemy.engine import Dialect, Engine

from os_trace_plugins import _flagged, _switches
from os_trace_plugins._hooks import shared
from os_trace_plugins.db import set_sql_tracing, toggle
from os_trace_plugins.db.hook import SQLAlchemyHook
from tests.sql_helpers import SQLTestCase, attached, flagged_request

_UNSAMPLED = trace.set_span_in_context(trace.NonRecordingSpan(trace.SpanContext(
    0x1234, 0x5678, is_remote=True, trace_flags=trace.TraceFlags(0))))


def enginefacade_engine() -> sa.Engine:
    """An engine built by oslo.db's enginefacade (listeners of its own on it)."""
    from oslo_db.sqlalchemy import enginefacade

    facade = enginefacade.transaction_context()
    facade.configure(connection="sqlite://")
    return facade.writer.get_engine()


@contextmanager
def current(ctx: Any) -> Iterator[None]:
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def lines_run_in(*codes: Any) -> Iterator[dict[str, int]]:
    """Count the calls of, and lines run in, the given code objects meanwhile."""
    seen = {"calls": 0, "lines": 0}
    wanted = set(codes)

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code not in wanted:
            return None
        seen["calls"] += 1

        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "line":
                seen["lines"] += 1
            return local
        return local

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield seen
    finally:
        sys.settrace(previous)


class EnginefacadeRestingTest(SQLTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.engine = enginefacade_engine()
        self.addCleanup(self.engine.dispose)
        self.install(trace_sqlalchemy=False, sql_trace_on_request=True)

    def _codes(self) -> list[Any]:
        ls = toggle.TOGGLE.listeners
        assert ls is not None
        return [ls.before_cursor_execute.__code__, ls.after_cursor_execute.__code__,
                ls.rollback.__code__]

    def test_oslo_db_engine_dispatches_anyway_ours_return_at_the_first_check(self) -> None:
        self.assertIs(self.engine.__dict__.get("_has_events"), True,
                      "oslo.db no longer listens on its engines: rethink docs/sql.md")
        self.assertFalse(attached())
        with self.tracer.start_as_current_span("request"):
            with lines_run_in(*self._codes()) as seen:
                with self.engine.begin() as conn:
                    for n in range(5):
                        conn.exec_driver_sql(f"SELECT {n}")
        # SQLAlchemy calls ours (oslo.db's listeners keep its dispatch on) and
        # each call runs one line: the `if not me.active` check and its return
        self.assertGreaterEqual(seen["calls"], 10)
        self.assertLessEqual(seen["lines"], 2 * seen["calls"])
        self.assertEqual(self.sql_spans(), [])

    def test_flagged_request_on_an_oslo_db_engine(self) -> None:
        with flagged_request(baggage.set_baggage("os_trace.sql", "1")):
            with self.tracer.start_as_current_span("request"):
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 'flagged'")
            with current(baggage.set_baggage("os_trace.sql", "1", _UNSAMPLED)):
                with self.engine.connect() as conn:  # dispatched: oslo.db's flag
                    conn.exec_driver_sql("SELECT 'unsampled'")
        with self.tracer.start_as_current_span("request-2"):
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 'after'")
        texts = [s.attributes["db.query.text"] for s in self.sql_spans()]
        # oslo.db's SQLite engine issues its own BEGIN inside the flagged request
        self.assertEqual([t for t in texts if t != "BEGIN"], ["SELECT 'flagged'"])
        for span in self.sql_spans():
            self.assertChildOf(span, self.span("request"))


class SwitchStressTest(SQLTestCase):
    def test_hundreds_of_flips_under_load_break_no_statement_leak_no_span(self) -> None:
        self.install(trace_sqlalchemy=False, sql_trace_on_request=True)
        facade_engines = [enginefacade_engine() for _ in range(2)]
        engines = facade_engines + [sa.create_engine("sqlite://") for _ in range(2)]
        for e in facade_engines:
            self.addCleanup(e.dispose)
        failures: list[BaseException] = []
        counts = [0] * len(engines)
        done = threading.Event()
        flagged_ctx = baggage.set_baggage("os_trace.sql", "1")

        def work(i: int) -> None:
            with self.tracer.start_as_current_span(f"worker-{i}"):
                with engines[i].connect() as conn:
                    while not done.is_set():
                        try:
                            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
                            counts[i] += 1
                        except BaseException as exc:  # any failure is the point
                            failures.append(exc)

        threads = [threading.Thread(target=work, args=(i,), daemon=True)
                   for i in range(len(engines))]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)  # provoke thread switches mid-dispatch
        flips = 0
        try:
            for t in threads:
                t.start()
            for i in range(200):
                set_sql_tracing(i % 2 == 0)
                flagged = _flagged.enter(flagged_ctx)  # a flagged request starts
                _flagged.leave(flagged)                # ... and ends
                flips += 3
                done.wait(0.001)
        finally:
            done.set()
            for t in threads:
                t.join(10)
            sys.setswitchinterval(interval)
        self.assertEqual(failures, [])
        self.assertGreaterEqual(flips, 600)
        self.assertTrue(all(counts), counts)
        self.assertEqual(toggle.TOGGLE.listeners.open, {})
        self.assertTrue(self.sql_spans())
        for span in self.spans():
            self.assertIsNotNone(span.end_time)


class RootSpansTest(SQLTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.engine = sa.create_engine("sqlite://")
        self.install(trace_sqlalchemy=True, sql_trace_on_request=False)

    def _root_query(self, tag: str) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT '{tag}'")

    def test_a_statement_outside_any_trace_makes_no_span_by_default(self) -> None:
        self.assertIs(self.engine._has_events, False, "the gate shuts for a root")
        self._root_query("periodic")
        with self.tracer.start_as_current_span("request"):
            self._root_query("in a request")
        self.assertEqual([s.attributes["db.query.text"] for s in self.sql_spans()],
                         ["SELECT 'in a request'"])

    def test_sql_root_spans_is_live(self) -> None:
        self.bind(sql_root_spans=True)
        self._root_query("root")
        self.bind(sql_root_spans=False)
        self._root_query("not any more")
        (span,) = self.sql_spans()
        self.assertEqual(span.attributes["db.query.text"], "SELECT 'root'")
        self.assertIsNone(span.parent)


class SamplerDecidesTest(SQLTestCase):
    def test_a_sampler_that_records_children_of_unsampled_parents_gets_them(self) -> None:
        exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=ALWAYS_ON)  # not parent-based
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        self.addCleanup(provider.shutdown)
        self.bind(trace_sqlalchemy=True)
        shared(SQLAlchemyHook).instrument(self.conf, provider)
        engine = sa.create_engine("sqlite://")
        with current(_UNSAMPLED):
            self.assertIs(engine._has_events, True, "the sampler said record")
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 'unsampled parent'")
        (span,) = exporter.get_finished_spans()
        self.assertEqual(span.parent.span_id, 0x5678)
        self.assertEqual(span.context.trace_id, 0x1234)


class NeverRaisesTest(SQLTestCase):
    def test_broken_dispatch_does_not_reach_the_caller(self) -> None:
        engine = sa.create_engine("sqlite://")
        broken = mock.PropertyMock(side_effect=RuntimeError("SQLAlchemy changed"))
        with self.assertLogs("os_trace_plugins", "ERROR") as logs:
            with mock.patch.object(type(Engine.dispatch), "_event_names", broken):
                set_sql_tracing(True)   # installs, censuses: must not raise
                set_sql_tracing(False)
                set_sql_tracing(True)
        self.assertIn("class-level listeners", "\n".join(logs.output))
        self.assertTrue(_switches.SWITCHES.trace_sqlalchemy)
        self.assertIs(Engine.__dict__["_has_events"], True, "unknown: plainly open")
        with self.tracer.start_as_current_span("request"), engine.connect() as conn:
            self.assertEqual(conn.exec_driver_sql("SELECT 7").scalar(), 7)
        self.assertEqual(len(self.sql_spans()), 1)
        set_sql_tracing(False)
        # which listeners were ours could not be learnt: both flags stay plainly
        # open (nobody silenced), and ours return at their first check
        self.assertIs(Dialect.__dict__["_has_events"], True)
        self.assertFalse(attached())
        with self.tracer.start_as_current_span("request"), engine.connect() as conn:
            self.assertEqual(conn.exec_driver_sql("SELECT 8").scalar(), 8)
        self.assertEqual(len(self.sql_spans()), 1)

    def test_a_failing_install_is_logged_not_raised(self) -> None:
        with mock.patch.object(toggle.TOGGLE, "install", side_effect=RuntimeError("bug")), \
                self.assertLogs("os_trace_plugins", "ERROR"):
            set_sql_tracing(True)
        self.assertFalse(attached())


class NoImportTest(SQLTestCase):
    def test_instrumenting_imports_nothing_of_sqlalchemy(self) -> None:
        code = textwrap.dedent("""
            import sys
            from opentelemetry import trace
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                InMemorySpanExporter)
            exporter = InMemorySpanExporter()
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            from os_trace_plugins.db import set_sql_tracing
            from os_trace_plugins.db.hook import SQLAlchemyInstrumentor
            SQLAlchemyInstrumentor().instrument(tracer_provider=provider)
            set_sql_tracing(True)
            leaked = sorted(m for m in sys.modules if m.split(".")[0] == "sqlalchemy")
            print("imported before the service:", leaked)
            assert not leaked, leaked
            import sqlalchemy as sa  # the service imports it: listeners arrive
            engine = sa.create_engine("sqlite://")
            with trace.get_tracer("svc").start_as_current_span("request"):
                with engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
            print("sql spans:", sum(1 for s in exporter.get_finished_spans()
                                    if "db.system.name" in (s.attributes or {})))
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120, env=dict(os.environ, OTEL_SDK_DISABLED="false"))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("imported before the service: []", out.stdout)
        self.assertIn("sql spans: 1", out.stdout)


class PrivateTouchPointsTest(SQLTestCase):
    """SQLAlchemy internals we rely on (docs/sql.md lists them): fail loudly if they go."""

    def test_has_events_class_flags_gate_the_dispatch(self) -> None:
        for cls in (Engine, Dialect):
            self.assertIn("_has_events", cls.__dict__,
                          f"SQLAlchemy no longer has {cls.__name__}._has_events")
        engine = sa.create_engine("sqlite://")
        seen: list[str] = []

        def probe(conn: Any, cursor: Any, stmt: str, *args: Any) -> None:
            seen.append(stmt)

        sa.event.listen(Engine, "after_cursor_execute", probe)
        try:
            type.__setattr__(Engine, "_has_events", False)
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 'shut'")
            type.__setattr__(Engine, "_has_events", True)
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 'open'")
        finally:
            sa.event.remove(Engine, "after_cursor_execute", probe)
            type.__setattr__(Engine, "_has_events", False)
        self.assertEqual(seen, ["SELECT 'open'"],
                         "Engine._has_events no longer gates the connection events")

    def test_the_listener_census_sees_class_level_listeners(self) -> None:
        def probe(*args: Any) -> None:
            return None

        sa.event.listen(Engine, "after_cursor_execute", probe)
        try:
            found = toggle._class_listeners((Engine,))
        finally:
            sa.event.remove(Engine, "after_cursor_execute", probe)
            type.__setattr__(Engine, "_has_events", False)
        self.assertIsNotNone(found, "dispatch._event_names / _clslevel unreadable")
        self.assertIn(probe, found or [])
