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

import os_trace_plugins
from os_trace_plugins import _flagged, _switches
from os_trace_plugins._hooks import shared
from os_trace_plugins.db import _gate as gate
from os_trace_plugins.db import _toggle as toggle
from os_trace_plugins.db import set_sql_tracing
from os_trace_plugins.db._hook import SQLAlchemyHook
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
def frames_of_ours() -> Iterator[list[str]]:
    """Names of the os_trace_plugins functions called meanwhile (this thread)."""
    seen: list[str] = []
    root = os.path.dirname(os.path.abspath(os_trace_plugins.__file__))

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_filename.startswith(root):
            seen.append(frame.f_code.co_name)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(previous)


class EnginefacadeRestingTest(SQLTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.engine = enginefacade_engine()
        self.addCleanup(self.engine.dispose)
        self.install(trace_sqlalchemy=False, sql_trace_on_request=True)

    def test_oslo_db_engine_at_rest_runs_no_code_of_ours(self) -> None:
        self.assertIs(self.engine.__dict__.get("_has_events"), True,
                      "oslo.db no longer listens on its engines: rethink docs/sql.md")
        self.assertFalse(attached())
        with self.tracer.start_as_current_span("request"):
            with frames_of_ours() as seen:
                with self.engine.begin() as conn:
                    for n in range(5):
                        conn.exec_driver_sql(f"SELECT {n}")
        self.assertEqual(seen, [], "a statement at rest ran code of ours")
        with flagged_request(baggage.set_baggage("os_trace.sql", "1")):
            with frames_of_ours() as seen, self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 'probe'")
        self.assertTrue(seen, "the probe does see our wrapper when attached")

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
            self.assertTrue(gate.wants_sql(), "the sampler said record")
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 'unsampled parent'")
        (span,) = exporter.get_finished_spans()
        self.assertEqual(span.parent.span_id, 0x5678)
        self.assertEqual(span.context.trace_id, 0x1234)


class NeverRaisesTest(SQLTestCase):
    def test_a_failing_wrap_does_not_reach_the_caller(self) -> None:
        engine = sa.create_engine("sqlite://")
        broken = mock.patch("os_trace_plugins._patching.wrapt.wrap_object",
                            side_effect=RuntimeError("wrapt changed"))
        with self.assertLogs("os_trace_plugins", "ERROR") as logs, broken:
            set_sql_tracing(True)   # installs and wraps: must not raise
            set_sql_tracing(False)
            set_sql_tracing(True)
        self.assertIn("RuntimeError", "\n".join(logs.output))
        self.assertTrue(_switches.SWITCHES.trace_sqlalchemy)
        with self.tracer.start_as_current_span("request"), engine.connect() as conn:
            self.assertEqual(conn.exec_driver_sql("SELECT 7").scalar(), 7)
        set_sql_tracing(False)
        set_sql_tracing(True)  # wrapt works again: spans again
        with self.tracer.start_as_current_span("request"), engine.connect() as conn:
            self.assertEqual(conn.exec_driver_sql("SELECT 8").scalar(), 8)
        self.assertEqual([s.attributes["db.query.text"] for s in self.sql_spans()],
                         ["SELECT 8"])

    def test_a_failing_switch_listener_is_logged_not_raised(self) -> None:
        self.install(trace_sqlalchemy=False)
        with mock.patch.object(toggle.TOGGLE, "_attach", side_effect=RuntimeError("bug")), \
                self.assertLogs("os_trace_plugins", "ERROR"):
            set_sql_tracing(True)
            _flagged.leave(_flagged.enter(baggage.set_baggage("os_trace.sql", "1")))

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
            from os_trace_plugins.db._hook import SQLAlchemyInstrumentor
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


class WrappedMethodsTest(SQLTestCase):
    """SQLAlchemy's public Dialect.do_execute* must carry every cursor call:
    fail loudly if a release stops routing statements through them."""

    def test_every_execution_style_goes_through_a_wrapped_method(self) -> None:
        self.install(trace_sqlalchemy=True, sql_root_spans=True)
        engine = sa.create_engine("sqlite://")
        meta = sa.MetaData()
        t = sa.Table("w", meta, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("v", sa.String(10)))
        meta.create_all(engine)
        self.exporter.clear()
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT 1")                          # no params
            conn.execute(sa.text("SELECT :x"), {"x": 1})              # do_execute
            conn.execute(t.insert(), [{"v": "a"}, {"v": "b"}])        # insertmanyvalues
            conn.execute(t.update().where(t.c.id == sa.bindparam("i")).values(
                v=sa.bindparam("nv")), [{"i": 1, "nv": "c"}, {"i": 2, "nv": "d"}])
        names = [s.name for s in self.sql_spans()]
        self.assertEqual(names, ["SELECT", "SELECT", "INSERT w", "UPDATE w"], names)
        batch = [s.attributes.get("db.operation.batch.size") for s in self.sql_spans()]
        self.assertEqual(batch, [None, None, 2, 2])
        for _module, path, _ in toggle.TARGETS[:3]:
            cls, meth = path.split(".")
            self.assertIn(meth, vars(sa.engine.default.DefaultDialect))
