"""Hostile RPC carriers, OSProfiler ``trace_info`` and SQL statements (5. Hostile input).

RPC: the real ``RPCDispatcher.dispatch`` with our hook, fed fake-driver
messages whose request-context dict carries generated carriers (valid W3C,
valid OSProfiler ``trace_info``, garbage of every type, 1 MB values, huge
method names).  Promises: every message is delivered, the service's strict
context class never sees a trace key, a trace is continued only from a valid
carrier, and no span value outgrows the cap.

SQL: hostile statements (empty, whitespace, comment-only, 1 MB, NUL and other
binary characters, junk, valid ones in comments) executed through a real
SQLite engine with SQL tracing on.  Promises: the result or error is exactly
the driver's own (compared with the bare ``sqlite3`` module), no internal
error is logged, ``db.query.text`` and the span name stay within the caps.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from oslo_messaging._drivers.impl_fake import FakeIncomingMessage
from oslo_messaging.rpc.dispatcher import RPCDispatcher

from os_trace_plugins import _bounds
from os_trace_plugins.rpc import _server as rpc_server
from tests.figures import report
from tests.functional.rpc_env import Recorder, RPCTestCase, StrictContext, StrictSerializer
from tests.reliability._hostile import Tally, longest_value, settings
from tests.sql_helpers import SQLTestCase

MB = 1 << 20
anything = st.one_of(
    st.none(), st.integers(), st.floats(), st.booleans(), st.binary(max_size=40),
    st.text(max_size=60), st.sampled_from(["x" * MB, "\x00" * 100, "00-" + "f" * 60]),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3))
tps = st.builds(lambda t, s, f: f"00-{t:032x}-{s:016x}-{f:02x}",
                st.integers(1, (1 << 128) - 1), st.integers(1, (1 << 64) - 1),
                st.integers(0, 255).map(lambda f: f | 1))
uuids = st.uuids().map(str)


@st.composite
def carriers(draw: Any) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(["w3c", "osprofiler", "garbage", "garbage-info"]))
    ctxt: dict[str, Any] = {}
    if kind == "w3c":
        ctxt["traceparent"] = draw(tps)
    elif kind == "osprofiler":
        parent = draw(uuids.filter(lambda u: uuid.UUID(u).int & ((1 << 64) - 1)))
        ctxt["trace_info"] = {"base_id": draw(uuids), "parent_id": parent,
                              "hmac_key": draw(st.text(max_size=10))}
    elif kind == "garbage":
        for key in draw(st.sets(st.sampled_from(["traceparent", "tracestate", "baggage"]),
                                min_size=1)):
            ctxt[key] = draw(anything)
    else:
        ctxt["trace_info"] = draw(st.one_of(anything, st.fixed_dictionaries({}, optional={
            "base_id": st.one_of(uuids, anything), "parent_id": anything})))
    if draw(st.booleans()):
        ctxt["tracestate"] = draw(st.one_of(anything, st.just("a=1,b=" + "x" * 600)))
    if draw(st.booleans()):
        ctxt["baggage"] = draw(st.one_of(anything, st.just("k=" + "v" * 9000)))
    for key in draw(st.sets(st.sampled_from(["request_id", "user_id", "project_id"]))):
        ctxt[key] = draw(st.one_of(anything, st.just("r" * MB)))
    return kind, ctxt


def _valid_w3c(ctxt: dict[str, Any]) -> bool:
    tp = ctxt.get("traceparent")
    return (isinstance(tp, str) and len(tp) == 55 and tp[:3] == "00-"
            and all(c in "0123456789abcdef-" for c in tp)
            and int(tp[3:35], 16) != 0 and int(tp[36:52], 16) != 0)


class HostileCarrierTest(RPCTestCase):
    def setUp(self) -> None:
        super().setUp()
        rpc_server.BAD_CARRIER_LOG.reset()
        self.rec = Recorder()
        self.dispatcher = RPCDispatcher([self.rec], StrictSerializer())
        logger = logging.getLogger("os_trace_plugins")
        self.addCleanup(logger.setLevel, logger.level)
        logger.setLevel(logging.CRITICAL)  # one line per minute; not measured here

    @pytest.mark.slow
    def test_property_carriers(self) -> None:
        tally = Tally()

        @settings(2000)
        @given(case=carriers(), method=st.one_of(st.just("echo"), st.sampled_from(
            ["", "x" * MB, "\x00"]), st.text(max_size=20)))
        def run(case: tuple[str, dict[str, Any]], method: str) -> None:
            kind, ctxt = case
            self.exporter.clear()
            self.rec.seen.clear()
            tally.add(kind)
            incoming = FakeIncomingMessage(dict(ctxt), {"method": method,
                                                        "args": {"value": 1}}, None, None)
            with tally.case((kind, ctxt, method)):
                try:
                    result = self.dispatcher.dispatch(incoming)
                except Exception as exc:  # the service's own answer to a bad method
                    if method == "echo" or type(exc).__name__ != "NoSuchMethod":
                        raise
                    tally.add("no_such_method")
                else:
                    assert result == 1, result
                    assert isinstance(self.rec.seen[0]["ctxt"], StrictContext)
                    tally.add("delivered")
                (span,) = self.spans()
                tally.high("longest_value", longest_value([span]))
                valid = kind == "osprofiler" or (kind == "w3c" and _valid_w3c(ctxt))
                continued = span.parent is not None
                tally.add("continued_valid", int(valid and continued))
                tally.add("invalid_continued", int(continued and not valid))
                tally.add("valid_dropped", int(valid and not continued))

        run()
        valid = tally["w3c"] + tally["osprofiler"]
        report("5 hostile input", "RPC carriers and OSProfiler trace_info (dispatcher)",
               cases=tally.cases, delivered=tally["delivered"],
               bad_method_refused_by_service=tally["no_such_method"],
               valid_continued=f"{tally['continued_valid']}/{valid}",
               invalid_continued=tally["invalid_continued"],
               exceptions_escaped=tally.escaped, longest_span_value=tally["longest_value"])
        self.assertEqual(tally.escaped, 0, tally.examples)
        self.assertGreaterEqual(tally.cases, 2000)
        self.assertEqual(tally["invalid_continued"], 0)
        self.assertEqual(tally["valid_dropped"], 0)
        self.assertEqual(tally["delivered"] + tally["no_such_method"], tally.cases)
        self.assertLessEqual(tally["longest_value"], _bounds.MAX_VALUE_LENGTH + 8)


statements = st.one_of(
    st.sampled_from(["", " ", "\n\t", ";", "--", "-- only a comment", "/* */", "/*",
                     "/**/" * 5000, "-- c\n" * 5000, " " * MB, "SELECT 1" + " " * MB,
                     "SELECT 1 -- " + "x" * MB, "SELECT * FROM " + "t" * MB,
                     "SELECT '" + "s" * MB + "'", "\x00", "SELECT 1\x00", "SELECT '\udcff'",
                     "SELECT ?", "SELECT :a", "SELECT %s", "select 1; select 2",
                     "/* x */ SELECT 1", "PRAGMA user_version", "SELECT x'00ff'"]),
    st.text(max_size=200),
    st.text(st.characters(max_codepoint=0x2FF), max_size=200),
    st.builds(lambda c, s: c + s, st.sampled_from(["/* a */", "-- b\n", "  ", "/*/**/*/"]),
              st.sampled_from(["SELECT 1", "SELECT name FROM item", "VALUES (1)", "BOGUS"])),
)


def _outcome(run: Any) -> tuple[Any, ...]:
    try:
        return ("rows", [tuple(r) for r in run()])
    except sa.exc.DBAPIError as exc:  # SQLAlchemy wraps the driver's error: compare that
        return ("error", type(exc.orig).__name__, str(exc.orig))
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))


class HostileStatementTest(SQLTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.engine = sa.create_engine("sqlite://")
        self.raw = sqlite3.connect(":memory:")
        ddl = "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)"
        with self.engine.begin() as conn:  # sqlite:// keeps one connection per thread
            conn.exec_driver_sql(ddl)
        self.raw.execute(ddl)
        self.install(trace_sqlalchemy=True, sql_trace_on_request=False, sql_root_spans=True)
        self.errors: list[logging.LogRecord] = []
        handler = logging.Handler(logging.ERROR)
        handler.emit = self.errors.append  # type: ignore[method-assign]
        logging.getLogger("os_trace_plugins").addHandler(handler)
        self.addCleanup(logging.getLogger("os_trace_plugins").removeHandler, handler)

    @pytest.mark.slow
    def test_property_statements(self) -> None:
        tally = Tally()
        limit = 2048

        def traced(statement: str) -> Any:
            with self.engine.connect() as conn:
                result = conn.exec_driver_sql(statement)
                return result.fetchall() if result.returns_rows else []

        def bare(statement: str) -> Any:
            cursor = self.raw.execute(statement)
            return cursor.fetchall() if cursor.description else []

        @settings(1500)
        @given(statement=statements)
        def run(statement: str) -> None:
            self.exporter.clear()
            with tally.case(statement[:200]):
                with self.tracer.start_as_current_span("request"):
                    ours = _outcome(lambda: traced(statement))
                theirs = _outcome(lambda: bare(statement))
                tally.add("same_outcome", int(ours == theirs))
                if ours != theirs:
                    tally.add("different")
                    raise AssertionError(f"traced {ours!r} != bare {theirs!r}")
                tally.add("driver_errors", int(ours[0] == "error"))
                sql = [s for s in self.spans() if s.name != "request"]
                tally.add("sql_spans", len(sql))
                tally.high("longest_value", longest_value(sql))

        run()
        report("5 hostile input", "SQL statements through SQLite with SQL tracing on",
               cases=tally.cases, same_result_or_error_as_driver=tally["same_outcome"],
               driver_errors=tally["driver_errors"], sql_spans=tally["sql_spans"],
               internal_errors_logged=len(self.errors), exceptions_escaped=tally.escaped,
               longest_span_value=tally["longest_value"])
        self.assertEqual(tally.escaped, 0, tally.examples)
        self.assertEqual(self.errors, [])
        self.assertGreaterEqual(tally.cases, 1500)
        self.assertGreater(tally["sql_spans"], 500)
        self.assertLessEqual(tally["longest_value"], limit)
