"""``os-trace list`` / ``os-trace show`` end to end, including every bad input."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from os_trace_plugins.cmd._main import main
from os_trace_plugins.store import _reader as reader_mod
from os_trace_plugins.store import _schema as schema
from tests.base import write_config
from tests.store_fixtures import Recorder, fill_store, openstack_trace

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.mkdtemp(prefix="os-trace-cli-")
        cls.store = os.path.join(cls.tmp, "spans.db")
        rec = Recorder()
        cls.failing = openstack_trace(rec, error=True)
        cls.fine = openstack_trace(rec, error=False, sleep=0.02)
        cls.spans = rec.take()
        fill_store(cls.store, cls.spans).shutdown()

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_cli(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
        self.assertNotIn("Traceback", err.getvalue())
        return code, out.getvalue(), err.getvalue()

    def assertOneLineError(self, argv: tuple[str, ...], pattern: str) -> None:
        code, out, err = self.run_cli(*argv)
        self.assertNotEqual(code, 0, out)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertRegex(err, pattern)

    # -- list ---------------------------------------------------------------
    def test_list(self) -> None:
        code, out, _ = self.run_cli("list", "--store", self.store)
        self.assertEqual(code, 0)
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("TRACE ID"))
        self.assertEqual([line[:32] for line in lines[1:]], [self.fine, self.failing])
        self.assertIn("  !  POST /v2.1/servers  [nova-api, nova-compute, nova-conductor]",
                      lines[2])
        self.assertIn("      8  ", lines[1])

    def test_list_filters(self) -> None:
        def ids(*extra: str) -> list[str]:
            code, out, _ = self.run_cli("list", "--store", self.store, *extra)
            self.assertEqual(code, 0)
            return [line[:32] for line in out.splitlines()[1:]]
        self.assertEqual(ids("--errors"), [self.failing])
        self.assertEqual(ids("--min-duration", "30"), [self.fine])
        self.assertEqual(ids("--limit", "1"), [self.fine])
        self.assertEqual(len(ids("--service", "nova-compute")), 2)
        code, out, err = self.run_cli("list", "--store", self.store, "--service", "nope")
        self.assertEqual((code, out), (0, ""))
        self.assertIn("no matching traces", err)

    def test_list_store_from_config_file(self) -> None:
        conf = write_config(os.path.join(self.tmp, "svc.conf"),
                            {"connection_string": f"sqlite:///{self.store}"})
        code, out, _ = self.run_cli("list", "--config-file", conf)
        self.assertEqual(code, 0)
        self.assertIn(self.failing, out)
        otlp = write_config(os.path.join(self.tmp, "otlp.conf"),
                            {"connection_string": "otlp://collector:4318"})
        self.assertOneLineError(("list", "--config-file", otlp), "not to the embedded store")

    def test_default_store_from_state_dir(self) -> None:
        state = os.path.join(self.tmp, "state")
        os.makedirs(state, exist_ok=True)
        shutil.copy(self.store, os.path.join(state, "spans.db"))
        with mock.patch.dict(os.environ, {"OS_TRACE_STATE_DIR": state}):
            code, out, _ = self.run_cli("list")
        self.assertEqual(code, 0)
        self.assertIn(self.fine, out)

    # -- show ---------------------------------------------------------------
    def test_show_tree_and_prefix(self) -> None:
        code, out, _ = self.run_cli("show", self.failing[:8], "--store", self.store)
        self.assertEqual(code, 0)
        self.assertTrue(out.startswith(f"trace {self.failing}  8 spans"))
        self.assertIn("ERROR: hypervisor unreachable", out)
        self.assertNotIn("\033", out)  # not a tty

    def test_show_json_html_dot(self) -> None:
        code, out, _ = self.run_cli("show", self.failing, "--store", self.store, "--json")
        self.assertEqual(code, 0)
        self.assertEqual(json.loads(out)["span_count"], 8)
        html = os.path.join(self.tmp, "r.html")
        code, out, _ = self.run_cli("show", self.failing, "--store", self.store,
                                    "--html", html)
        self.assertEqual(code, 0)
        self.assertIn(f"wrote {html}", out)
        with open(html, encoding="utf-8") as f:
            self.assertIn("FakeDriver.spawn", f.read())
        dot = os.path.join(self.tmp, "r.dot")
        code, out, err = self.run_cli("show", self.failing, "--store", self.store,
                                      "--dot", dot, "--render")
        self.assertTrue(os.path.exists(dot))
        if shutil.which("dot"):
            self.assertEqual(code, 0, err)
            self.assertTrue(os.path.exists(dot + ".svg"))
        else:
            self.assertEqual(code, 1)
            self.assertIn("Graphviz 'dot' is not installed", err)

    def test_show_otlp_json(self) -> None:
        path = os.path.join(self.tmp, "export.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(json_format.MessageToDict(encode_spans(self.spans)), f)
        code, out, _ = self.run_cli("show", self.fine, "--otlp-json", path)
        self.assertEqual(code, 0)
        self.assertTrue(out.startswith(f"trace {self.fine}  8 spans"))
        self.assertOneLineError(("show", "0" * 32, "--otlp-json", path),
                                "is not in .*export.json")

    # -- bad input ----------------------------------------------------------
    def test_bad_inputs_are_one_line(self) -> None:
        junk = os.path.join(self.tmp, "junk.db")
        with open(junk, "wb") as f:
            f.write(os.urandom(4096))
        foreign = os.path.join(self.tmp, "foreign.db")
        sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.close()
        newer = os.path.join(self.tmp, "newer.db")
        conn = sqlite3.connect(newer)
        conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 7}")
        conn.close()
        not_otlp = os.path.join(self.tmp, "not.json")
        with open(not_otlp, "w") as f:
            f.write('{"hello": "world"}')
        cases = [
            (("show", "f" * 32, "--store", self.store), "is not in the store"),
            (("show", "zzz", "--store", self.store), "is not a trace id"),
            (("show", "abc", "--store", self.store), "too short"),
            (("list", "--store", os.path.join(self.tmp, "none.db")), "no span store at"),
            (("list", "--store", junk), "not a readable span store"),
            (("show", self.fine, "--store", junk), "not a readable span store"),
            (("list", "--store", foreign), "not an os-trace span store"),
            (("list", "--store", newer), "newer than this os_trace_plugins"),
            (("show", self.fine, "--otlp-json", not_otlp), "not OTLP/JSON"),
            (("show", self.fine, "--store", self.store, "--render"), "--render goes with"),
            (("show", self.fine, "--store", self.store, "--html", "/nonexistent/x.html"),
             "cannot write"),
            (("list", "--store", self.store, "--limit", "0"), "at least 1"),
        ]
        for argv, pattern in cases:
            with self.subTest(argv=argv):
                self.assertOneLineError(argv, pattern)

    def test_locked_store(self) -> None:
        locker = sqlite3.connect(self.store, isolation_level=None)
        locker.execute("PRAGMA locking_mode = EXCLUSIVE")
        locker.execute("BEGIN EXCLUSIVE")
        locker.execute("DELETE FROM trace_services WHERE 0")
        try:
            with mock.patch.object(reader_mod, "_READ_TIMEOUT_S", 0.2):
                self.assertOneLineError(("list", "--store", self.store), "locked")
        finally:
            locker.execute("ROLLBACK")
            locker.close()

    def test_console_script_entry(self) -> None:
        proc = subprocess.run([sys.executable, "-m", "os_trace_plugins.cmd._main", "show",
                               "0" * 32, "--store", self.store], capture_output=True,
                              text=True, timeout=60, cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=ROOT))
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr.strip(),
                         f"os-trace show: trace {'0' * 32} is not in the store {self.store}")


class ListingSpeedTest(unittest.TestCase):
    """10,000 stored traces list in under a second (summaries written directly)."""

    def test_list_10000_traces_under_one_second(self) -> None:
        from os_trace_plugins.store._exporter import SQLiteSpanExporter

        with tempfile.TemporaryDirectory() as tmp:
            store = os.path.join(tmp, "spans.db")
            SQLiteSpanExporter(store).export([])
            conn = sqlite3.connect(store, isolation_level=None)
            conn.execute("BEGIN")
            now = 1_800_000_000 * 10**9
            conn.executemany(
                "INSERT INTO traces VALUES (?, ?, ?, 12, ?, 'POST /servers', 'nova-api', "
                "'POST /servers', 'nova-api')",
                [(f"{i:032x}", now + i * 10**6, now + i * 10**6 + 5 * 10**6, i % 7 == 0)
                 for i in range(10_000)])
            conn.executemany("INSERT INTO trace_services VALUES (?, ?)",
                             [(svc, f"{i:032x}") for i in range(10_000)
                              for svc in ("nova-api", "nova-conductor")])
            conn.execute("COMMIT")
            conn.close()
            out = io.StringIO()
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(out):
                code = main(["list", "--store", store, "--limit", "10000"])
            elapsed = time.perf_counter() - t0
        self.assertEqual(code, 0)
        self.assertEqual(len(out.getvalue().splitlines()), 10_001)
        self.assertLess(elapsed, 1.0)
