"""Hostile configuration values and store files (5. Hostile input).

Config: generated ``[profiler]`` sections are written to a file, parsed by a
real ``ConfigOpts`` and handed to ``os_trace_plugins.setup()``, as a service
does at start.  Promise: setup never raises; a bad value leaves tracing off
with clear log lines (no traceback), and a span made afterwards is harmless.

Store: a real store (written by ``SQLiteSpanExporter``) is truncated, has
bytes flipped, a newer or negative ``user_version``, rows with junk in any
column, or is not a store at all; then it is read through ``StoreReader``,
the report model and the ``os-trace list`` / ``show`` commands.  Promises:
only ``StoreError``/``ReportError`` from the API, exit status 0 or 1 with one
line and no traceback from the commands, and the store file's bytes and
mtime unchanged by any reader.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import sqlite3
import tempfile
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from oslo_config import cfg

import os_trace_plugins
from os_trace_plugins import opts
from os_trace_plugins.cmd import _main as os_trace
from os_trace_plugins.report._json_report import render_json
from os_trace_plugins.report._model import ReportError, Trace
from os_trace_plugins.report._text import render_text
from os_trace_plugins.store._reader import StoreReader
from os_trace_plugins.store._schema import StoreError
from tests import base, store_fixtures
from tests.figures import report
from tests.reliability._hostile import Tally, settings

line = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40)
number = st.one_of(line, st.sampled_from(["0", "-1", "1e999", "nan", "inf", "0.5", "2",
                                          "99999999999999999999", "16", "15", ""]))
flag = st.one_of(line, st.sampled_from(["true", "false", "yes", "0", "1", "on", "maybe"]))
connection = st.one_of(line, st.sampled_from([
    "sqlite://", "sqlite:///STORE", "sqlite://host/x", "otlp://", "otlp://127.0.0.1:1",
    "otlp+grpc://127.0.0.1:1", "jaeger://127.0.0.1:6831", "console://", "messaging://",
    "otlp://127.0.0.1:99999", "otlp://[::1", "http://127.0.0.1:4318", ":::", "sqlite:"]))
sections = st.fixed_dictionaries({"enabled": st.sampled_from(["true", "true", "false"])},
                                 optional={
    "connection_string": connection, "sampling_rate": number, "hmac_keys": line,
    "sql_max_statement_length": number, "max_queue_size": number, "export_timeout": number,
    "otlp_headers": line, "trace_sqlalchemy": flag, "trace_rpc": flag, "service_name": line,
    "signature_max_age": number, "store_max_size_mb": number, "driver_namespaces": line,
    "trace_wsgi": flag, "log_correlation": flag})


class HostileConfigTest(base.TestCase):
    @pytest.mark.slow
    def test_property_setup_never_raises(self) -> None:
        tally = Tally()
        records: list[logging.LogRecord] = []
        handler = logging.Handler(logging.WARNING)
        handler.emit = records.append  # type: ignore[method-assign]
        logger = logging.getLogger("os_trace_plugins")
        logger.addHandler(handler)
        self.addCleanup(logger.removeHandler, handler)
        path = os.path.join(self.tmpdir, "hostile.conf")
        env = mock.patch.dict(os.environ, {"OS_TRACE_STATE_DIR": self.tmpdir})
        env.start()
        self.addCleanup(env.stop)

        @settings(1000)
        @given(section=sections)
        def run(section: dict[str, str]) -> None:
            records.clear()
            if section.get("connection_string") == "sqlite:///STORE":
                section["connection_string"] = f"sqlite:///{self.tmpdir}/s.db"
            with open(path, "w", encoding="utf-8") as f:
                f.write("[profiler]\n" + "".join(f"{k} = {v}\n" for k, v in section.items()))
            with tally.case(section):
                conf = cfg.ConfigOpts()
                opts.register_opts(conf)
                conf(args=[], project="hostile", default_config_files=[path])
                try:
                    on = os_trace_plugins.setup(conf, service="hostile")
                    with trace.get_tracer("hostile").start_as_current_span("after setup"):
                        pass
                finally:
                    os_trace_plugins.shutdown()
                    base.reset_globals()
                    os_trace_plugins._setup._state.clear()
                tally.add("on" if on else "off")
                errors = [r for r in records if r.levelno >= logging.ERROR]
                tally.add("refused_with_log_line", int(not on and bool(errors)))
                traced = [r for r in errors if r.exc_info]
                tally.add("tracebacks_logged", len(traced))
                if traced and len(tally.examples) < 5:
                    tally.examples.append(f"{traced[0].getMessage()} <- {section!r}"[:400])
                tally.high("most_error_lines", len(errors))

        run()
        report("5 hostile input", "[profiler] values through ConfigOpts and setup()",
               cases=tally.cases, tracing_on=tally["on"], tracing_off=tally["off"],
               refused_with_a_log_line=tally["refused_with_log_line"],
               tracebacks_logged=tally["tracebacks_logged"],
               most_error_lines_per_start=tally["most_error_lines"],
               exceptions_escaped=tally.escaped)
        self.assertEqual(tally.escaped, 0, tally.examples)
        self.assertEqual(tally["tracebacks_logged"], 0, tally.examples)
        self.assertGreaterEqual(tally.cases, 1000)
        self.assertGreater(min(tally["on"], tally["off"], tally["refused_with_log_line"]), 20)


    def test_values_that_used_to_fail_with_a_traceback(self) -> None:
        """Found by the property above; each was a traceback or a crash in setup()."""
        env = mock.patch.dict(os.environ, {"OS_TRACE_STATE_DIR": self.tmpdir})
        env.start()
        self.addCleanup(env.stop)
        for section, expected in (({"export_timeout": ""}, False),
                                  ({"sampling_rate": ""}, False),
                                  ({"export_timeout": "inf"}, False),
                                  ({"hmac_keys": "$nope"}, False),
                                  ({"connection_string": "sqlite:"}, False),
                                  ({"max_queue_size": "16"}, True)):
            with self.subTest(section=section):
                path = self.config_file({"enabled": True, **section})
                conf = cfg.ConfigOpts()
                opts.register_opts(conf)
                conf(args=[], project="hostile", default_config_files=[path])
                with self.assertLogs("os_trace_plugins", logging.DEBUG) as logs:
                    on = os_trace_plugins.setup(conf, service="hostile")
                os_trace_plugins.shutdown()
                os_trace_plugins._setup._state.clear()
                base.reset_globals()
                self.assertEqual(on, expected, logs.output)
                self.assertFalse([r for r in logs.records if r.exc_info], logs.output)


COLUMNS = ("trace_id", "span_id", "parent_id", "service", "name", "kind", "start_ns",
           "end_ns", "status_code", "attributes", "events", "links", "resource")
junk_value = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.binary(max_size=20),
                       st.text(max_size=30), st.sampled_from(
                           ["[]", "[1]", "{", "null", "1", '"x"', '{"a": [1, {"b": 2}]}',
                            '[{"name": 1}]', "[null]", "x" * 100_000]))


@st.composite
def damage(draw: Any) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["truncate", "flip", "version", "rows", "rows", "empty",
                                 "random", "foreign"]))
    if kind == "truncate":
        return kind, draw(st.integers(0, 200_000))
    if kind == "flip":
        return kind, draw(st.lists(st.tuples(st.integers(0, 200_000), st.integers(0, 255)),
                                   min_size=1, max_size=8))
    if kind == "version":
        return kind, draw(st.integers(-(2**31), 2**31 - 1))
    if kind == "rows":
        return kind, draw(st.lists(st.tuples(st.sampled_from(COLUMNS), junk_value),
                                   min_size=1, max_size=4))
    if kind == "random":
        return kind, draw(st.binary(min_size=1, max_size=2000))
    return kind, None


def _apply(path: str, kind: str, arg: Any) -> None:
    if kind == "truncate":
        with open(path, "r+b") as f:
            f.truncate(arg)
    elif kind == "flip":
        with open(path, "r+b") as f:
            size = os.path.getsize(path)
            for offset, byte in arg:
                f.seek(offset % size)
                f.write(bytes([byte]))
    elif kind in ("version", "rows", "foreign"):
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            if kind == "version":
                conn.execute(f"PRAGMA user_version = {arg}")
            elif kind == "foreign":
                conn.execute("DROP TABLE spans")
                conn.execute("CREATE TABLE spans (x)")
            else:
                conn.execute("PRAGMA ignore_check_constraints = 1")
                for column, value in arg:
                    with contextlib.suppress(sqlite3.Error):  # NOT NULL: the row stays
                        conn.execute(f"UPDATE spans SET {column} = ? WHERE rowid IN "
                                     f"(SELECT rowid FROM spans ORDER BY random() LIMIT 3)",
                                     (value,))
            conn.execute("PRAGMA journal_mode = DELETE")  # no WAL left to merge
        finally:
            conn.close()
    elif kind == "empty":
        open(path, "wb").close()
    elif kind == "random":
        with open(path, "wb") as f:
            f.write(arg)


def _fingerprint(path: str) -> tuple[str, int]:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest(), os.stat(path).st_mtime_ns


class HostileStoreTest(base.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.dir = tempfile.mkdtemp(prefix="os-trace-hostile-store-")
        cls.pristine = os.path.join(cls.dir, "pristine.db")
        rec = store_fixtures.Recorder()
        ids = [store_fixtures.openstack_trace(rec) for _ in range(3)]
        store_fixtures.fill_store(cls.pristine, rec.take()).shutdown()
        conn = sqlite3.connect(cls.pristine, isolation_level=None)
        conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file to damage
        conn.close()
        cls.trace_ids = ids

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.dir, ignore_errors=True)
        super().tearDownClass()

    def read_all(self, path: str, tally: Tally) -> None:
        try:
            with StoreReader(path) as reader:
                listed = reader.list_traces(limit=50)
                for tid in [t.trace_id for t in listed][:3] + self.trace_ids[:1]:
                    try:
                        built = Trace.from_dicts(reader.spans(tid))
                    except (StoreError, ReportError):
                        tally.add("refused")
                        continue
                    render_text(built)
                    render_json(built)
                    tally.add("rendered")
        except StoreError:
            tally.add("refused")
        for argv in (["list", "--store", path], ["show", self.trace_ids[0], "--store", path],
                     ["show", self.trace_ids[0][:8], "--json", "--store", path]):
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = os_trace.main(argv)
            assert code in (0, 1), (argv, code, err.getvalue())
            assert "Traceback" not in err.getvalue(), err.getvalue()
            text = err.getvalue()
            assert text.count("\n") <= 1 and text.rstrip("\n").isprintable(), text
            tally.add(f"exit_{code}")

    @pytest.mark.slow
    def test_property_readers_survive_and_never_write(self) -> None:
        tally = Tally()
        path = os.path.join(self.dir, "damaged.db")

        @settings(1000)
        @given(case=damage())
        def run(case: tuple[str, Any]) -> None:
            kind, arg = case
            for leftover in (path, path + "-wal", path + "-shm", path + "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(leftover)
            shutil.copyfile(self.pristine, path)
            _apply(path, kind, arg)
            tally.add(kind)
            before = _fingerprint(path)
            with tally.case(case):
                self.read_all(path, tally)
            tally.add("store_files_modified", int(_fingerprint(path) != before))

        run()
        report("5 hostile input", "damaged store files through StoreReader and os-trace",
               cases=tally.cases, reports_rendered=tally["rendered"],
               refused_with_store_error=tally["refused"],
               commands_exit_0=tally["exit_0"], commands_exit_1=tally["exit_1"],
               store_files_modified=tally["store_files_modified"],
               exceptions_escaped=tally.escaped)
        self.assertEqual(tally.escaped, 0, tally.examples)
        self.assertEqual(tally["store_files_modified"], 0)
        self.assertGreaterEqual(tally.cases, 1000)
        self.assertGreater(min(tally["rendered"], tally["refused"]), 50)
        # the fingerprint does see a writer: the control
        shutil.copyfile(self.pristine, path)
        before = _fingerprint(path)
        _apply(path, "version", 1)
        self.assertNotEqual(_fingerprint(path), before)
