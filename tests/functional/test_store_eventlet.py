"""Under eventlet monkey-patching, a store write waiting for a lock never freezes the hub."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

from tests.store_fixtures import fill_store

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = textwrap.dedent("""
    import eventlet
    eventlet.monkey_patch()
    import sys, time, warnings
    from tests.store_fixtures import Recorder, openstack_trace
    from os_trace_plugins.store._exporter import SQLiteSpanExporter
    rec = Recorder()
    openstack_trace(rec)
    spans = rec.take()
    exporter = SQLiteSpanExporter(sys.argv[1])
    ticks = []
    def ticker():
        while True:
            ticks.append(time.monotonic())
            eventlet.sleep(0.01)
    eventlet.spawn(ticker)
    eventlet.sleep(0.05)
    print("WAITING", flush=True)
    sys.stdin.readline()  # the parent holds the write lock now
    t0 = time.monotonic()
    result = exporter.export(spans)
    waited = time.monotonic() - t0
    during = [t for t in ticks if t0 <= t <= t0 + waited]
    print(result.name, round(waited, 2), len(during), flush=True)
""")


class EventletTest(unittest.TestCase):
    def test_lock_wait_runs_off_the_hub(self) -> None:
        tmp = tempfile.mkdtemp(prefix="os-trace-eventlet-")
        self.addCleanup(shutil.rmtree, tmp, True)
        store = os.path.join(tmp, "spans.db")
        fill_store(store, []).shutdown()
        child = subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", CHILD, store], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=ROOT))
        self.addCleanup(child.kill)
        assert child.stdout is not None and child.stdin is not None
        self.assertEqual(child.stdout.readline().strip(), "WAITING", child.stderr)
        locker = sqlite3.connect(store, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        child.stdin.write("go\n")
        child.stdin.flush()
        time.sleep(1.0)
        locker.execute("COMMIT")
        locker.close()
        out, err = child.communicate(timeout=60)
        result, waited, ticks = out.split()
        self.assertEqual(result, "SUCCESS", err)
        self.assertGreaterEqual(float(waited), 0.8)
        # the ticker kept running (every 10 ms) while the export waited
        self.assertGreater(int(ticks), 20, f"hub frozen for {waited}s")
