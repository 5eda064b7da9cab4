"""SQL spans on SQLite: shape, attributes, errors, sampling, per-request baggage."""

from __future__ import annotations

import asyncio
import importlib.util
import unittest
from typing import Any
from unittest import mock

import sqlalchemy as sa
from opentelemetry import baggage, trace
from opentelemetry.trace import SpanKind, StatusCode

from os_trace_plugins.db import _attributes as attributes
from os_trace_plugins.db import _execute as execute
from os_trace_plugins.db import _toggle as toggle
from os_trace_plugins.db import set_sql_tracing
from tests.secret_values import SQL_PARAMETER
from tests.sql_helpers import SQLTestCase, attached, flagged_request


def _engine() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)")
    return engine


class ListenerTest(SQLTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.engine = _engine()  # created before we attach: existing engines count
        self.install(trace_sqlalchemy=True, sql_trace_on_request=False,
                     sql_root_spans=True)

    def test_one_client_span_per_statement_child_of_current_never_current(self) -> None:
        seen: list[Any] = []

        @sa.event.listens_for(self.engine, "after_cursor_execute")
        def current(*_: Any) -> None:
            seen.append(trace.get_current_span())

        with self.tracer.start_as_current_span("request") as req:
            with self.engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO item (name) VALUES (:n)"),
                             {"n": SQL_PARAMETER})
                rows = conn.execute(sa.text("SELECT name FROM item WHERE id = 1")).all()
        self.assertEqual(rows, [(SQL_PARAMETER,)])
        self.assertEqual(seen, [req, req])  # our span was never made current
        request = self.span("request")
        insert, select = self.span("INSERT item"), self.span("SELECT item")
        for span in (insert, select):
            self.assertEqual(span.kind, SpanKind.CLIENT)
            self.assertChildOf(span, request)
        self.assertEqual(dict(select.attributes or {}), {
            "db.system.name": "sqlite", "db.operation.name": "SELECT",
            "db.collection.name": "item",
            "db.query.text": "SELECT name FROM item WHERE id = 1"})
        self.assertNotIn("db.query.parameter.n", insert.attributes or {})

    def test_orm_session(self) -> None:
        from sqlalchemy import orm

        Base: Any = orm.declarative_base()

        class Item(Base):
            __tablename__ = "item"
            id = sa.Column(sa.Integer, primary_key=True)
            name = sa.Column(sa.Text)

        with orm.Session(self.engine) as session:
            session.add(Item(name="orm"))
            session.commit()
            self.assertEqual(session.scalars(sa.select(Item.name)).all(), ["orm"])
        names = [s.name for s in self.sql_spans()]
        self.assertEqual(names, ["INSERT item", "SELECT item"])

    def test_executemany_is_one_span_with_batch_size(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO item (name) VALUES (?)",
                                 [("a",), ("b",), ("c",)])
        (span,) = self.sql_spans()
        self.assertEqual(span.attributes["db.operation.batch.size"], 3)

    def test_parameters_only_when_asked(self) -> None:
        self.bind(trace_sqlalchemy_parameters=True)
        with self.engine.begin() as conn:
            conn.execute(sa.text("SELECT * FROM item WHERE name = :name AND id = :id"),
                         {"name": "x" * 300, "id": 7})
        attrs = self.sql_spans()[0].attributes or {}
        self.assertEqual(attrs["db.query.parameter.id"], 7)
        self.assertEqual(attrs["db.query.parameter.name"], "x" * 256)

    def test_statement_cut_to_the_configured_length(self) -> None:
        query = sa.text("SELECT id, name FROM item WHERE id > 0")
        with self.engine.connect() as conn:
            conn.execute(query).all()
            self.bind(sql_max_statement_length=20)  # the cached entry must go
            conn.execute(query).all()
        texts = [s.attributes["db.query.text"] for s in self.sql_spans()]
        self.assertEqual(texts, [query.text, "SELECT id, name FROM"])

    def test_failing_statement_error_span_and_own_exception(self) -> None:
        with self.assertRaises(sa.exc.OperationalError) as caught:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT * FROM missing_table")
        self.assertIn("no such table", str(caught.exception))
        (span,) = self.sql_spans()
        self.assertEqual(span.status.status_code, StatusCode.ERROR)
        self.assertEqual(span.attributes["error.type"], "sqlite3.OperationalError")
        self.assertEqual([e.name for e in span.events], ["exception"])

    def test_transaction_rolled_back_after_error(self) -> None:
        with self.assertRaises(sa.exc.IntegrityError):
            with self.engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO item (id, name) VALUES (1, 'a')")
                conn.exec_driver_sql("INSERT INTO item (id, name) VALUES (1, 'b')")
        with self.engine.connect() as conn:
            self.assertEqual(conn.exec_driver_sql("SELECT count(*) FROM item").scalar(), 0)
        statuses = [s.status.status_code for s in self.sql_spans()]
        self.assertEqual(statuses, [StatusCode.UNSET, StatusCode.ERROR, StatusCode.UNSET])

    def test_unsampled_parent_gets_no_span(self) -> None:
        ctx = trace.set_span_in_context(trace.NonRecordingSpan(trace.SpanContext(
            1, 2, is_remote=True, trace_flags=trace.TraceFlags(0))))
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"), execution_options={})
            token = __import__("opentelemetry.context").context.attach(ctx)
            try:
                conn.execute(sa.text("SELECT 2")).all()
            finally:
                __import__("opentelemetry.context").context.detach(token)
        self.assertEqual([s.attributes["db.query.text"] for s in self.sql_spans()],
                         ["SELECT 1"])

    def test_engine_created_after_attach_is_traced(self) -> None:
        later = sa.create_engine("sqlite://")
        with later.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        self.assertEqual(len(self.sql_spans()), 1)

    def test_failure_inside_our_wrapper_leaves_query_and_result_unchanged(self) -> None:
        with mock.patch.object(attributes.EngineInfo, "entry",
                               side_effect=RuntimeError("bug in before")):
            with self.engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO item (name) VALUES ('z')"))
                got = conn.execute(sa.text("SELECT name FROM item")).all()
        self.assertEqual(got, [("z",)])
        self.assertEqual(self.sql_spans(), [])

        class Exploding:
            def is_recording(self) -> bool:
                return True

            def set_attribute(self, *_: Any) -> None:
                raise ValueError("bug in attributes")

            def end(self) -> None:
                raise ValueError("bug in end")

        exploding_tracer = mock.Mock(start_span=lambda *a, **k: Exploding())
        toggle.TOGGLE.install(exploding_tracer)  # re-wraps with the broken tracer
        self.bind(trace_sqlalchemy_parameters=True)
        with mock.patch.object(execute, "_parameters", side_effect=KeyError("p")):
            with self.engine.begin() as conn:
                got = conn.execute(sa.text("SELECT name FROM item WHERE name = :n"),
                                   {"n": "z"}).all()
                with self.assertRaises(sa.exc.OperationalError) as caught:
                    conn.exec_driver_sql("SELECT * FROM missing_table")
        self.assertIn("missing_table", str(caught.exception))
        self.assertEqual(got, [("z",)])

    def test_skip_user_error_events_still_ends_the_span_with_the_error(self) -> None:
        with self.engine.connect() as conn:
            with self.assertRaises(sa.exc.OperationalError):
                conn.execution_options(skip_user_error_events=True).exec_driver_sql(
                    "SELECT * FROM missing_table")
        (span,) = self.sql_spans()
        self.assertEqual(span.attributes["error.type"], "sqlite3.OperationalError")
        self.assertIsNotNone(span.end_time)

    def test_switching_off_mid_statement_still_ends_its_span(self) -> None:
        seen: list[bool] = []

        @sa.event.listens_for(self.engine, "after_cursor_execute")
        def switch_off(*_: Any) -> None:  # runs after the cursor call, span still open
            set_sql_tracing(False)
            seen.append(attached())

        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 'cut'")
            conn.exec_driver_sql("SELECT 'after'")
        self.assertEqual(seen, [False, False])
        self.assertEqual([s.attributes["db.query.text"] for s in self.sql_spans()],
                         ["SELECT 'cut'"])
        self.assertIsNotNone(self.sql_spans()[0].end_time)

    def test_switching_off_detaches_and_ends_running_spans(self) -> None:
        self.assertTrue(attached())
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            self.bind(trace_sqlalchemy=False)
            set_sql_tracing(False)
            self.assertFalse(attached())
            conn.exec_driver_sql("SELECT 2")
        self.assertEqual(len(self.sql_spans()), 1)


class PerRequestTest(SQLTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.engine = _engine()

    def _query(self, flagged: bool) -> None:
        ctx = baggage.set_baggage("os_trace.sql", "1" if flagged else "0")
        with flagged_request(ctx), self.tracer.start_as_current_span("request"):
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")

    def test_flagged_request_traced_while_trace_sqlalchemy_off(self) -> None:
        self.install(trace_sqlalchemy=False, sql_trace_on_request=True)
        self._query(flagged=False)
        self.assertEqual(self.sql_spans(), [])
        self._query(flagged=True)
        self.assertEqual(len(self.sql_spans()), 1)

    def test_flag_ignored_when_not_permitted_and_nothing_attached(self) -> None:
        self.install(trace_sqlalchemy=False, sql_trace_on_request=False)
        self.assertFalse(attached())
        self._query(flagged=True)
        self.assertEqual(self.sql_spans(), [])


@unittest.skipUnless(importlib.util.find_spec("aiosqlite"), "aiosqlite not installed")
class AsyncEngineTest(SQLTestCase):
    def test_one_span_per_query_none_left_open(self) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine("sqlite+aiosqlite://")  # before attaching
        self.install(trace_sqlalchemy=True, sql_trace_on_request=False,
                     sql_root_spans=True)

        async def work() -> list[Any]:
            with self.tracer.start_as_current_span("task"):
                async with engine.begin() as conn:
                    await conn.exec_driver_sql("CREATE TABLE a (x INTEGER)")
                    await conn.exec_driver_sql("INSERT INTO a VALUES (1)")
                    rows = (await conn.exec_driver_sql("SELECT x FROM a")).all()
                    try:
                        await conn.exec_driver_sql("SELECT * FROM nope")
                    except sa.exc.OperationalError:
                        pass
            await engine.dispose()
            return list(rows)

        self.assertEqual(asyncio.run(work()), [(1,)])
        spans = self.sql_spans()
        self.assertEqual([s.name for s in spans],
                         ["CREATE a", "INSERT a", "SELECT a", "SELECT nope"])
        for span in spans:
            self.assertChildOf(span, self.span("task"))
        self.assertEqual(spans[-1].status.status_code, StatusCode.ERROR)
