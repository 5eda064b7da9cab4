"""Many processes writing one store through setup()'s batch processor; readers read only."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import unittest

from os_trace_plugins.store._reader import StoreReader
from os_trace_plugins.store._schema import StoreError
from tests.reliability.test_store_writers import WRITER
from tests.store_fixtures import Recorder, fill_store, openstack_trace

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: the writer process of the 8-writer reliability test (a start line, N threads)
WRITER_THREADS = 2


class ConcurrentWritersTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="os-trace-conc-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.store = os.path.join(self.tmp, "state", "spans.db")

    def test_three_processes_write_one_store(self) -> None:
        env = dict(os.environ, PYTHONPATH=ROOT)
        n = 400
        go = os.path.join(self.tmp, "go")
        open(go, "w").close()  # no start line: each writer starts at once
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, self.store, f"svc{i}", go,
                                   str(WRITER_THREADS), str(n)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
                 for i in range(3)]
        expected: set[str] = set()
        for p in procs:
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
            self.assertNotIn("not written", err)
            expected.update(t for t in out.split() if len(t) == 32)  # the trace ids
        self.assertEqual(len(expected), 3 * WRITER_THREADS * n)
        with StoreReader(self.store) as reader:
            rows = reader.list_traces(limit=100_000)
            self.assertEqual({r.trace_id for r in rows}, expected)
            self.assertTrue(all(r.span_count == 2 and r.complete for r in rows))
            self.assertEqual(len(reader.list_traces(service="svc1", limit=10_000)),
                             WRITER_THREADS * n)
        conn = sqlite3.connect(self.store)
        self.assertEqual(conn.execute("SELECT count(*) FROM spans").fetchone()[0],
                         3 * WRITER_THREADS * n * 2)
        conn.close()


class ReadOnlyTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="os-trace-ro-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.store = os.path.join(self.tmp, "spans.db")
        rec = Recorder()
        self.trace_id = openstack_trace(rec)
        fill_store(self.store, rec.take()).shutdown()

    def _digest(self) -> str:
        with open(self.store, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def test_reading_changes_nothing(self) -> None:
        before = self._digest()
        with StoreReader(self.store) as reader:
            reader.list_traces(errors=True, service="nova-api", min_duration_ms=0)
            reader.spans(self.trace_id[:10])
        self.assertEqual(self._digest(), before)
        # SQLite may leave its WAL coordination files; they hold no data
        wal = self.store + "-wal"
        self.assertEqual(os.path.getsize(wal) if os.path.exists(wal) else 0, 0)

    def test_reader_cannot_write(self) -> None:
        with StoreReader(self.store) as reader:
            with self.assertRaises(sqlite3.OperationalError):
                reader._conn.execute("DELETE FROM spans")
        with StoreReader(self.store) as reader:
            self.assertEqual(len(reader.spans(self.trace_id)), 8)

    def test_locked_store_is_one_clear_error(self) -> None:
        locker = sqlite3.connect(self.store, isolation_level=None)
        locker.execute("PRAGMA locking_mode = EXCLUSIVE")
        locker.execute("BEGIN EXCLUSIVE")
        locker.execute("DELETE FROM trace_services")  # holds the write lock
        try:
            with self.assertRaisesRegex(StoreError, "locked by another process"):
                with StoreReader(self.store, timeout=0.2) as reader:
                    reader.list_traces()
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        with StoreReader(self.store) as reader:
            self.assertEqual(len(reader.list_traces()), 1)

    def test_reader_sees_spans_while_a_writer_is_open(self) -> None:
        rec = Recorder()
        exp = fill_store(self.store, [])
        second = openstack_trace(rec, error=False)
        fill_store(self.store, rec.take(), exporter=exp)  # connection stays open (WAL)
        with StoreReader(self.store) as reader:
            self.assertEqual({t.trace_id for t in reader.list_traces()},
                             {self.trace_id, second})
            self.assertEqual([t.trace_id for t in reader.list_traces(errors=True)],
                             [self.trace_id])
        exp.shutdown()


FORKER = textwrap.dedent("""
    import os, sqlite3, sys
    from tests.store_fixtures import Recorder, openstack_trace
    from os_trace_plugins.store._exporter import SQLiteSpanExporter
    store = sys.argv[1]
    rec = Recorder()
    exporter = SQLiteSpanExporter(store)
    openstack_trace(rec)
    assert exporter.export(rec.take()).name == "SUCCESS"   # parent connection open
    pid = os.fork()
    if pid == 0:
        openstack_trace(rec)
        ok = exporter.export(rec.take()).name == "SUCCESS"  # reopens in the child
        del exporter
        import gc; gc.collect()
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    openstack_trace(rec)
    assert exporter.export(rec.take()).name == "SUCCESS"   # parent's connection still good
    exporter.shutdown()
    conn = sqlite3.connect(store)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    print(conn.execute("SELECT count(*) FROM traces").fetchone()[0])
""")


class ForkTest(unittest.TestCase):
    def test_fork_reopens_and_leaves_the_parent_connection_alone(self) -> None:
        tmp = tempfile.mkdtemp(prefix="os-trace-fork-")
        self.addCleanup(shutil.rmtree, tmp, True)
        proc = subprocess.run([sys.executable, "-c", FORKER, os.path.join(tmp, "s.db")],
                              capture_output=True, text=True, timeout=60, cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=ROOT))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "3")
