"""Statement parsing and per-engine attributes (pure helpers)."""

from __future__ import annotations

import unittest
from types import SimpleNamespace

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from os_trace_plugins.db import _attributes as attributes
from os_trace_plugins.db import _statement as statement


class ParseTest(unittest.TestCase):
    def check(self, sql: str, op: str | None, coll: str | None, name: str) -> None:
        got = statement.parse(sql, 2048)
        self.assertEqual(got[:3], (op, coll, name), sql)

    def test_operations_and_collections(self) -> None:
        self.check("SELECT a, b FROM instances WHERE id = ?", "SELECT", "instances",
                   "SELECT instances")
        self.check("select * from nova.instances", "SELECT", "nova.instances",
                   "SELECT nova.instances")
        self.check('INSERT INTO "ports" (id) VALUES (%(id)s)', "INSERT", "ports",
                   "INSERT ports")
        self.check("UPDATE `volumes` SET x = 1", "UPDATE", "volumes", "UPDATE volumes")
        self.check("DELETE FROM images WHERE id = 1", "DELETE", "images", "DELETE images")
        self.check("CREATE TABLE IF NOT EXISTS t1 (x int)", "CREATE", "t1", "CREATE t1")
        self.check("DROP TABLE IF EXISTS t1", "DROP", "t1", "DROP t1")
        self.check("SELECT x FROM t WHERE id IN (1, 2) LIMIT 3", "SELECT", "t", "SELECT t")
        self.check("/* comment */ SELECT 1", "SELECT", None, "SELECT")
        self.check("BEGIN", "BEGIN", None, "BEGIN")
        self.check("", None, None, "SQL")

    def test_ambiguous_collections_left_out(self) -> None:
        self.check("SELECT * FROM a JOIN b ON a.id = b.id", "SELECT", None, "SELECT")
        self.check("SELECT * FROM a, b", "SELECT", None, "SELECT")
        self.check("SELECT * FROM (SELECT x FROM a) AS s", "SELECT", None, "SELECT")
        self.check("SELECT x FROM a WHERE y IN (SELECT y FROM b)", "SELECT", None, "SELECT")

    def test_text_cut(self) -> None:
        self.assertEqual(statement.parse("SELECT 123456789", 10)[3], "SELECT 123")

    @given(st.text(max_size=200), st.integers(min_value=16, max_value=64))
    def test_never_raises_and_respects_length(self, sql: str, n: int) -> None:
        op, coll, name, text = statement.parse(sql, n)
        self.assertLessEqual(len(text), n)
        self.assertTrue(name)


class SystemNameTest(unittest.TestCase):
    def test_mariadb_from_server_version(self) -> None:
        dialect = SimpleNamespace(name="mysql", server_version_info=(10, 11, 6, "MariaDB"))
        self.assertEqual(attributes.system_name(dialect), ("mariadb", True))
        self.assertEqual(attributes.system_name(
            SimpleNamespace(name="mysql", server_version_info=(8, 0, 36))), ("mysql", True))
        self.assertEqual(attributes.system_name(
            SimpleNamespace(name="mysql", server_version_info=None)), ("mysql", False))
        self.assertEqual(attributes.system_name(
            SimpleNamespace(name="mysql", is_mariadb=True)), ("mariadb", True))

    def test_engine_attributes_cached_once(self) -> None:
        engine = sa.create_engine("postgresql+psycopg2://u@db.example:6432/nova")
        info = attributes.engine_info(engine)
        self.assertIs(attributes.engine_info(engine), info)
        self.assertEqual(info.base, {"db.system.name": "postgresql", "db.namespace": "nova",
                                     "server.address": "db.example", "server.port": 6432})
        name, attrs = info.entry("SELECT * FROM t")
        self.assertIs(info.entry("SELECT * FROM t")[1], attrs)
        self.assertEqual(name, "SELECT t")

    def test_option_engine_shares_its_parent_info(self) -> None:
        engine = sa.create_engine("sqlite:///some.db")
        option = engine.execution_options(isolation_level="SERIALIZABLE")
        self.assertIs(attributes.engine_info(option), attributes.engine_info(engine))
        self.assertEqual(attributes.engine_info(option).base["db.namespace"], "some.db")

    def test_unconnected_mysql_not_cached(self) -> None:
        engine = sa.create_engine("mysql+pymysql://root@127.0.0.1/test")
        info = attributes.engine_info(engine)
        self.assertEqual(info.base["server.port"], 3306)
        self.assertIsNot(attributes.engine_info(engine), info)

    def test_statement_cache_bounded(self) -> None:
        info = attributes.engine_info(sa.create_engine("sqlite://"))
        for i in range(attributes.STATEMENTS_PER_ENGINE + 5):
            info.entry(f"SELECT {i}")
        self.assertLessEqual(len(info.entries), attributes.STATEMENTS_PER_ENGINE)


class HostileStatementParseTest(unittest.TestCase):
    """Parsing stays linear and bounded whatever the statement (docs/reliability.md)."""

    def test_comment_only_statements_are_linear(self) -> None:
        import time

        for sql in ("/**/" * 5000, "/* a */ " * 5000 + "x", "-- c\n" * 5000, "/*" * 5000):
            start = time.perf_counter()
            statement.parse(sql, 2048)  # a backtracking regex took 14 s for 26 "/**/"
            self.assertLess(time.perf_counter() - start, 0.5, sql[:20])
        self.assertEqual(statement.parse("/* a */ -- b\n select 1 from t", 2048)[:3],
                         ("SELECT", "t", "SELECT t"))

    def test_huge_names_are_not_reported_and_huge_statements_not_cached(self) -> None:
        op, collection, name, text = statement.parse("SELECT * FROM " + "t" * 100_000, 2048)
        self.assertEqual((op, collection, name, len(text)), ("SELECT", None, "SELECT", 2048))
        self.assertEqual(statement.parse("x" * 1000, 2048)[2], "SQL")
        before = statement._cached.cache_info().currsize
        statement.parse("SELECT 1 -- " + "y" * (statement.CACHE_MAX_LENGTH + 1), 2048)
        self.assertEqual(statement._cached.cache_info().currsize, before)
