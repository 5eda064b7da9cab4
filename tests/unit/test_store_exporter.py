"""SQLiteSpanExporter: rows, summaries, duplicates, retention, schema versions."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
import unittest

from opentelemetry.sdk.trace.export import SpanExportResult

from os_trace_plugins.store import _retention as retention
from os_trace_plugins.store import _schema as schema
from os_trace_plugins.store._exporter import SQLiteSpanExporter
from os_trace_plugins.store._reader import StoreReader
from os_trace_plugins.store._schema import StoreError
from tests.store_fixtures import Recorder, fill_store, openstack_trace


class ExporterTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="os-trace-store-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.path = os.path.join(self.tmp, "state", "nested", "spans.db")
        self.rec = Recorder()

    def test_creates_directory_wal_and_schema(self) -> None:
        openstack_trace(self.rec)
        fill_store(self.path, self.rec.take()).shutdown()
        self.assertTrue(os.path.isfile(self.path))
        conn = sqlite3.connect(self.path)
        self.assertEqual(conn.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        self.assertEqual(conn.execute("PRAGMA user_version").fetchone()[0],
                         schema.SCHEMA_VERSION)
        indexes = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}
        self.assertIn("traces_by_start", indexes)
        conn.close()

    def test_rows_and_summary_round_trip(self) -> None:
        trace_id = openstack_trace(self.rec)
        fill_store(self.path, self.rec.take()).shutdown()
        with StoreReader(self.path) as reader:
            [summary] = reader.list_traces()
            spans = reader.spans(trace_id)
        self.assertEqual(summary.trace_id, trace_id)
        self.assertEqual(summary.span_count, 8)
        self.assertEqual(summary.error_count, 1)
        self.assertEqual(summary.root_name, "POST /v2.1/servers")
        self.assertEqual(summary.root_service, "nova-api")
        self.assertTrue(summary.complete)
        self.assertEqual(summary.services, ("nova-api", "nova-compute", "nova-conductor"))
        by_name = {s["name"]: s for s in spans}
        drv = by_name["FakeDriver.spawn"]
        self.assertEqual(drv["status_code"], "ERROR")
        self.assertEqual(drv["status_message"], "hypervisor unreachable")
        self.assertEqual(drv["attributes"]["openstack.driver.name"], "FakeDriver")
        self.assertEqual([e["name"] for e in drv["events"]], ["retry", "exception"])
        self.assertEqual(drv["parent_id"], by_name["build_instances"]["span_id"])
        self.assertEqual(by_name["build_instances"]["kind"], "SERVER")
        self.assertEqual(drv["resource"]["service.name"], "nova-conductor")
        self.assertIsNone(by_name["POST /v2.1/servers"]["parent_id"])

    def test_trace_split_over_batches_and_processes_sums_up(self) -> None:
        trace_id = openstack_trace(self.rec)
        spans = self.rec.take()
        # children first (as a remote service would flush before the API)
        exp = fill_store(self.path, spans[:3])
        with StoreReader(self.path) as reader:
            [partial] = reader.list_traces()
        self.assertFalse(partial.complete)
        fill_store(self.path, spans[3:], batch=2, exporter=exp)
        with StoreReader(self.path) as reader:
            [t] = reader.list_traces()
        self.assertEqual((t.trace_id, t.span_count, t.error_count), (trace_id, 8, 1))
        self.assertEqual(t.root_name, "POST /v2.1/servers")
        self.assertEqual(t.start_ns, min(s.start_time for s in spans))
        self.assertEqual(t.end_ns, max(s.end_time for s in spans))

    def test_re_exported_spans_are_not_counted_twice(self) -> None:
        openstack_trace(self.rec)
        spans = self.rec.take()
        exp = fill_store(self.path, spans)
        fill_store(self.path, spans[:4], exporter=exp)
        with StoreReader(self.path) as reader:
            [t] = reader.list_traces()
        self.assertEqual((t.span_count, t.error_count), (8, 1))
        self.assertEqual(t.root_name, "POST /v2.1/servers")

    def test_span_attribute_service_name_wins(self) -> None:
        with self.rec.tracer("one-process").start_as_current_span(
                "x", attributes={"service.name": "demo-conductor"}):
            pass
        fill_store(self.path, self.rec.take()).shutdown()
        with StoreReader(self.path) as reader:
            [t] = reader.list_traces(service="demo-conductor")
        self.assertEqual((t.root_service, t.services), ("demo-conductor", ("demo-conductor",)))

    def test_export_never_raises(self) -> None:
        blocker = os.path.join(self.tmp, "file")
        open(blocker, "w").close()
        exp = SQLiteSpanExporter(os.path.join(blocker, "spans.db"))  # dir is a file
        openstack_trace(self.rec)
        with self.assertLogs("os_trace_plugins.store._exporter", "WARNING") as logs:
            self.assertEqual(exp.export(self.rec.take()), SpanExportResult.FAILURE)
        self.assertIn("not written", logs.output[0])
        exp.shutdown()
        self.assertEqual(exp.export([]), SpanExportResult.FAILURE)

    def test_newer_schema_is_refused_and_untouched(self) -> None:
        os.makedirs(os.path.dirname(self.path))
        conn = sqlite3.connect(self.path)
        conn.execute("CREATE TABLE future (x)")
        conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
        conn.commit()
        conn.close()
        with open(self.path, "rb") as f:
            before = f.read()
        openstack_trace(self.rec)
        exp = SQLiteSpanExporter(self.path)
        with self.assertLogs("os_trace_plugins.store._exporter", "WARNING") as logs:
            self.assertEqual(exp.export(self.rec.take()), SpanExportResult.FAILURE)
        self.assertIn("newer than this os_trace_plugins", logs.output[0])
        with self.assertRaisesRegex(StoreError, "newer"):
            StoreReader(self.path)
        exp.shutdown()
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), before)


class RetentionTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="os-trace-retention-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.path = os.path.join(self.tmp, "spans.db")

    def test_max_age_removes_whole_old_traces(self) -> None:
        rec = Recorder()
        old = openstack_trace(rec)
        exp = fill_store(self.path, rec.take())
        new = openstack_trace(rec)
        fill_store(self.path, rec.take(), exporter=exp)
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("UPDATE traces SET start_ns = start_ns - 10 * 3600 * 1000000000 "
                     "WHERE trace_id = ?", (old,))
        removed = retention.trim(conn, max_age_hours=5, max_size_mb=0)
        self.assertEqual(removed, 1)
        self.assertEqual(conn.execute("SELECT count(*) FROM spans WHERE trace_id = ?",
                                      (old,)).fetchone()[0], 0)
        self.assertEqual(conn.execute("SELECT count(*) FROM trace_services WHERE "
                                      "trace_id = ?", (old,)).fetchone()[0], 0)
        self.assertEqual(conn.execute("SELECT count(*) FROM spans WHERE trace_id = ?",
                                      (new,)).fetchone()[0], 8)
        conn.close()
        exp.shutdown()

    def test_max_size_trims_oldest_first(self) -> None:
        rec = Recorder()
        ids = []
        exp = SQLiteSpanExporter(self.path, max_age_hours=0, max_size_mb=0)
        for _ in range(300):
            ids.append(openstack_trace(rec))
        fill_store(self.path, rec.take(), exporter=exp)
        conn = sqlite3.connect(self.path, isolation_level=None)
        size = retention.live_bytes(conn)
        exp.max_size_mb = size / 2 / 1024 / 1024
        removed = exp.trim_now()
        self.assertGreater(removed, 100)
        self.assertLessEqual(retention.live_bytes(conn), size / 2)
        left = {r[0] for r in conn.execute("SELECT trace_id FROM traces")}
        self.assertEqual(left, set(ids[removed:]))  # the newest survive
        conn.close()
        exp.shutdown()

    def test_export_applies_retention_periodically(self) -> None:
        rec = Recorder()
        exp = SQLiteSpanExporter(self.path, max_age_hours=1)
        openstack_trace(rec)
        spans = rec.take()
        for s in spans:  # a trace from two hours ago
            s._start_time -= 2 * 3600 * 10**9  # type: ignore[attr-defined]
            s._end_time -= 2 * 3600 * 10**9  # type: ignore[attr-defined]
        fill_store(self.path, spans, exporter=exp)
        with StoreReader(self.path) as reader:
            self.assertEqual(reader.count_traces(), 0)
        exp._next_trim = time.monotonic() + 3600
        openstack_trace(rec)
        fill_store(self.path, rec.take(), exporter=exp)
        with StoreReader(self.path) as reader:
            self.assertEqual(reader.count_traces(), 1)
        exp.shutdown()
