"""Per-request SQL: the gate opens only while a flagged request is active."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from opentelemetry import baggage
from opentelemetry import context as otel_context
from sqlalchemy.engine import Engine

from os_trace_plugins.db import toggle
from os_trace_plugins.db.watch import WATCH, _WatchingRuntimeContext
from tests.sql_helpers import SQLTestCase, attached


class WatchTest(SQLTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.original = otel_context._RUNTIME_CONTEXT
        self.engine = sa.create_engine("sqlite://")
        self.install(trace_sqlalchemy=False, sql_trace_on_request=True)

    def test_nested_flagged_contexts_keep_the_gate_open_until_the_last(self) -> None:
        self.assertFalse(attached())
        outer = self.with_baggage("os_trace.sql", "1")
        with self.tracer.start_as_current_span("request"):  # a nested flagged attach
            self.assertTrue(attached())
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        self.assertTrue(attached(), "the outer flagged context is still current")
        otel_context.detach(outer)
        self.assertFalse(attached())
        (span,) = self.sql_spans()
        self.assertChildOf(span, self.span("request"))

    def test_flagged_request_in_a_worker_thread_unflagged_one_beside_it(self) -> None:
        ready, release = threading.Event(), threading.Event()
        other = sa.create_engine("sqlite://")

        def flagged_worker() -> None:
            token = otel_context.attach(baggage.set_baggage("os_trace.sql", "1"))
            try:
                with self.tracer.start_as_current_span("rpc-server"):
                    with self.engine.connect() as conn:
                        conn.exec_driver_sql("SELECT 'flagged'")
                    ready.set()
                    release.wait(10)
            finally:
                otel_context.detach(token)

        thread = threading.Thread(target=flagged_worker)
        thread.start()
        self.assertTrue(ready.wait(10))
        with other.connect() as conn:  # gate open meanwhile, but no flag here
            conn.exec_driver_sql("SELECT 'unflagged'")
        release.set()
        thread.join(10)
        self.assertEqual([s.attributes["db.query.text"] for s in self.sql_spans()],
                         ["SELECT 'flagged'"])
        self.assertFalse(attached())

    def test_runtime_context_restored_on_uninstall_and_when_not_permitted(self) -> None:
        self.assertIsInstance(otel_context._RUNTIME_CONTEXT, _WatchingRuntimeContext)
        self.assertEqual(otel_context._RUNTIME_CONTEXT.get_current, self.original.get_current)
        self.bind(sql_trace_on_request=False)
        self.assertIs(otel_context._RUNTIME_CONTEXT, self.original)
        self.bind(sql_trace_on_request=True)
        self.assertTrue(WATCH.wrapped)
        toggle.reset()
        self.assertIs(otel_context._RUNTIME_CONTEXT, self.original)
        self.assertFalse(WATCH.enabled)

    def test_foreign_class_level_listener_keeps_working_after_switch_off(self) -> None:
        seen: list[Any] = []

        def foreign(conn: Any, *args: Any) -> None:
            seen.append(args[1])

        self.bind(trace_sqlalchemy=True)
        sa.event.listen(Engine, "after_cursor_execute", foreign)
        self.addCleanup(sa.event.remove, Engine, "after_cursor_execute", foreign)
        self.bind(trace_sqlalchemy=False)
        self.assertTrue(Engine._has_events, "someone else's class listener needs the gate")
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 'still seen'")
        self.assertEqual(seen, ["SELECT 'still seen'"])
        self.assertEqual(self.sql_spans(), [])
