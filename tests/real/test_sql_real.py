"""SQL spans against real PostgreSQL and MariaDB (and an oslo.db enginefacade engine)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import sqlalchemy as sa
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from tests.services import MARIADB_URL, POSTGRES_URL, require_service
from tests.sql_helpers import SQLTestCase


class _RealDB(SQLTestCase):
    __test__ = False  # a template: PostgreSQLTest and MariaDBTest run it
    url = ""
    service = ""
    system = ""
    port = 0

    def setUp(self) -> None:
        super().setUp()
        require_service(self.service)
        self.table = f"ostp_sql_{uuid.uuid4().hex[:10]}"
        self.engine = sa.create_engine(self.url, pool_pre_ping=True)
        self.addCleanup(self.engine.dispose)
        self.addCleanup(self._drop)
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE {self.table} (id INTEGER PRIMARY KEY, "
                                 "name VARCHAR(40))")
        # these tests are about attributes: statements outside a trace count too
        self.install(trace_sqlalchemy=True, sql_trace_on_request=False,
                     sql_root_spans=True)

    def _drop(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.table}")

    def test_attributes_and_parent(self) -> None:
        with self.tracer.start_as_current_span("request"):
            with self.engine.begin() as conn:
                conn.execute(sa.text(f"INSERT INTO {self.table} (id, name) VALUES (:i, :n)"),
                             [{"i": 1, "n": "a"}, {"i": 2, "n": "b"}])
                rows = conn.execute(sa.text(
                    f"SELECT name FROM {self.table} WHERE id = :i"), {"i": 2}).all()
        self.assertEqual(rows, [("b",)])
        select = self.span(f"SELECT {self.table}")
        self.assertChildOf(select, self.span("request"))
        attrs = dict(select.attributes or {})
        self.assertEqual(attrs["db.system.name"], self.system)
        self.assertEqual(attrs["db.namespace"], "test")
        self.assertEqual(attrs["server.address"], "127.0.0.1")
        self.assertEqual(attrs["server.port"], self.port)
        self.assertEqual(attrs["db.operation.name"], "SELECT")
        self.assertEqual(attrs["db.collection.name"], self.table)
        inserts = [s for s in self.sql_spans() if s.name == f"INSERT {self.table}"]
        self.assertEqual(len(inserts), 1)

    def test_core_insert_of_many_rows_is_one_span_per_batch(self) -> None:
        self.bind(trace_sqlalchemy_parameters=True)
        table = sa.Table(self.table, sa.MetaData(), sa.Column("id", sa.Integer),
                         sa.Column("name", sa.String(40)))
        with self.engine.begin() as conn:  # PostgreSQL: insertmanyvalues, one statement
            conn.execute(table.insert(), [{"id": i, "name": f"n{i}"} for i in range(1, 6)])
        (span,) = [s for s in self.sql_spans() if s.name == f"INSERT {self.table}"]
        self.assertEqual(span.attributes["db.operation.batch.size"], 5)
        params = [k for k in span.attributes if k.startswith("db.query.parameter.")]
        self.assertTrue(params)

    def test_rolled_back_transaction_after_error(self) -> None:
        with self.assertRaises(sa.exc.IntegrityError):
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"INSERT INTO {self.table} (id, name) VALUES (1, 'a')")
                conn.exec_driver_sql(f"INSERT INTO {self.table} (id, name) VALUES (1, 'b')")
        with self.engine.connect() as conn:
            count = conn.exec_driver_sql(f"SELECT count(*) FROM {self.table}").scalar()
        self.assertEqual(count, 0)
        failed = [s for s in self.sql_spans() if s.status.status_code == StatusCode.ERROR]
        self.assertEqual(len(failed), 1)
        self.assertIn(".", failed[0].attributes["error.type"])
        self.assertEqual([e.name for e in failed[0].events], ["exception"])

    def test_unsampled_trace_gets_no_span_sampled_one_records(self) -> None:
        unsampled = trace.set_span_in_context(trace.NonRecordingSpan(trace.SpanContext(
            0x1234, 0x5678, is_remote=True, trace_flags=trace.TraceFlags(0))))
        token = otel_context.attach(unsampled)
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql(f"SELECT id FROM {self.table}").all()
                with self.assertRaises(sa.exc.DBAPIError):
                    conn.exec_driver_sql("SELECT * FROM ostp_no_such_table")
        finally:
            otel_context.detach(token)
        self.assertEqual(self.sql_spans(), [])
        with self.tracer.start_as_current_span("request"):
            with self.engine.connect() as conn:
                conn.exec_driver_sql(f"SELECT id FROM {self.table}").all()
                with self.assertRaises(sa.exc.DBAPIError):
                    conn.exec_driver_sql("SELECT * FROM ostp_no_such_table")
        failed = self.span("SELECT ostp_no_such_table")
        self.assertChildOf(failed, self.span("request"))
        self.assertEqual(failed.status.status_code, StatusCode.ERROR)
        self.assertIn(".", failed.attributes["error.type"])
        self.assertChildOf(self.span(f"SELECT {self.table}"), self.span("request"))


class PostgreSQLTest(_RealDB):
    __test__ = True
    url, service, system, port = POSTGRES_URL, "postgresql", "postgresql", 5432

    def test_oslo_db_enginefacade_engine(self) -> None:
        from oslo_db import exception as db_exc
        from oslo_db.sqlalchemy import enginefacade

        self.bind(trace_sqlalchemy=False)
        facade = enginefacade.transaction_context()
        facade.configure(connection=self.url)
        engine = facade.writer.get_engine()  # built by oslo.db while SQL tracing is off
        self.addCleanup(engine.dispose)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 'before the switch'").all()
        self.bind(trace_sqlalchemy=True)  # the mutable switch flips (SIGHUP path)
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT id FROM {self.table}").all()
            with self.assertRaises(db_exc.DBError):
                conn.exec_driver_sql("SELECT * FROM ostp_no_such_table")
        names = [s.name for s in self.sql_spans()]
        self.assertIn(f"SELECT {self.table}", names)
        self.assertNotIn("before the switch", str([s.attributes for s in self.sql_spans()]))
        failed = self.span("SELECT ostp_no_such_table")
        self.assertEqual(failed.status.status_code, StatusCode.ERROR)
        self.assertEqual(failed.attributes["error.type"], "psycopg2.errors.UndefinedTable")
        # oslo.db's own handle_error still translates errors inside an
        # unsampled trace, where we make no span
        unsampled = trace.set_span_in_context(trace.NonRecordingSpan(trace.SpanContext(
            0x1234, 0x5678, is_remote=True, trace_flags=trace.TraceFlags(0))))
        before = len(self.sql_spans())
        token = otel_context.attach(unsampled)
        try:
            with engine.connect() as conn, self.assertRaises(db_exc.DBError):
                conn.exec_driver_sql("SELECT * FROM ostp_no_such_table")
        finally:
            otel_context.detach(token)
        self.assertEqual(len(self.sql_spans()), before)


    def test_async_engine_asyncpg(self) -> None:
        try:
            import asyncpg  # noqa: F401
        except ImportError:
            self.skipTest("asyncpg not installed")
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(self.url.replace("+psycopg2", "+asyncpg"))

        async def work() -> list[Any]:
            with self.tracer.start_as_current_span("task"):
                async with engine.connect() as conn:
                    rows = (await conn.exec_driver_sql(
                        f"SELECT count(*) FROM {self.table}")).all()
                    with self.assertRaises(sa.exc.ProgrammingError):
                        await conn.exec_driver_sql("SELECT * FROM ostp_no_such_table")
            await engine.dispose()
            return list(rows)

        before = len(self.sql_spans())
        self.assertEqual(asyncio.run(work()), [(0,)])
        spans = self.sql_spans()[before:]
        ours = [s for s in spans if s.parent is not None
                and s.parent.span_id == self.span("task").context.span_id]
        # the dialect's first-connect queries (server version, settings) are
        # real round trips of this task: they come first
        self.assertEqual([s.name for s in ours][-2:],
                         [f"SELECT {self.table}", "SELECT ostp_no_such_table"])
        self.assertEqual(ours[-1].status.status_code, StatusCode.ERROR)


class MariaDBTest(_RealDB):
    __test__ = True
    url, service, system, port = MARIADB_URL, "mariadb", "mariadb", 3306
