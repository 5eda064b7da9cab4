"""The runtime switch: config file + mutate_config_files(), code API, hook loading."""

from __future__ import annotations

from typing import Any

import osprofiler.opts
import sqlalchemy as sa
from opentelemetry import baggage
from oslo_config import cfg

import os_trace_plugins
from os_trace_plugins import _hooks, _switches, opts
from os_trace_plugins.db import _toggle as toggle
from os_trace_plugins.db import set_sql_tracing
from os_trace_plugins.db._hook import SQLAlchemyHook, SQLAlchemyInstrumentor
from tests.base import write_config
from tests.sql_helpers import SQLTestCase, attached, flagged_request


class ConfigFileToggleTest(SQLTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.engine = sa.create_engine("sqlite://")  # exists before anything attaches

    def _query(self, tag: str, engine: sa.Engine | None = None) -> None:
        with self.tracer.start_as_current_span("request"):
            with (engine or self.engine).connect() as conn:
                conn.exec_driver_sql(f"SELECT '{tag}'")

    def _texts(self) -> list[Any]:
        return [s.attributes["db.query.text"] for s in self.sql_spans()]

    def _run_toggle(self, conf: cfg.ConfigOpts, path: str) -> None:
        _switches.bind(conf)
        hook = SQLAlchemyHook()
        hook.instrument(conf, self.provider)
        self.addCleanup(hook.uninstrument)
        self.assertFalse(attached(), "off in the file: no listener at all")
        self._query("off-1")

        write_config(path, {"trace_sqlalchemy": True, "sql_trace_on_request": False})
        conf.mutate_config_files()
        self.assertTrue(attached())
        self._query("on")
        self._query("later", sa.create_engine("sqlite://"))  # an engine born while on

        write_config(path, {"trace_sqlalchemy": False, "sql_trace_on_request": False})
        conf.mutate_config_files()
        self.assertFalse(attached())
        self._query("off-2")
        self.assertEqual(self._texts(), ["SELECT 'on'", "SELECT 'later'"])

    def test_sighup_flips_sql_spans_for_existing_and_new_engines(self) -> None:
        path = self.config_file({"trace_sqlalchemy": False, "sql_trace_on_request": False})
        self.conf(args=[], project="os-trace-test", default_config_files=[path])
        self._run_toggle(self.conf, path)

    def test_sighup_flips_sql_when_osprofiler_registered_first(self) -> None:
        conf = cfg.ConfigOpts()
        osprofiler.opts.set_defaults(conf)  # its immutable trace_sqlalchemy wins
        opts.register_opts(conf)
        self.assertIn("trace_sqlalchemy", opts.foreign_opts(conf))
        path = self.config_file({"trace_sqlalchemy": False, "sql_trace_on_request": False},
                                name="osprofiler.conf")
        conf(args=[], project="os-trace-test", default_config_files=[path])
        self._run_toggle(conf, path)

    def test_per_request_permission_attaches_listeners(self) -> None:
        path = self.config_file({"trace_sqlalchemy": False, "sql_trace_on_request": False})
        self.conf(args=[], project="os-trace-test", default_config_files=[path])
        self.install()
        self.assertFalse(attached())
        write_config(path, {"trace_sqlalchemy": False, "sql_trace_on_request": True})
        self.conf.mutate_config_files()
        self.assertFalse(attached(), "no flagged request active: the gate stays shut")
        self._query("unflagged")
        with flagged_request(baggage.set_baggage("os_trace.sql", "1")):
            self.assertTrue(attached(), "a flagged request is active")
            self._query("flagged")
        self.assertFalse(attached(), "the last flagged request ended")
        self.assertEqual(self._texts(), ["SELECT 'flagged'"])
        write_config(path, {"trace_sqlalchemy": False, "sql_trace_on_request": False})
        self.conf.mutate_config_files()
        with flagged_request(baggage.set_baggage("os_trace.sql", "1")):
            self.assertFalse(attached(), "flag ignored when not permitted")


class CodeToggleTest(SQLTestCase):
    def test_set_sql_tracing_without_setup_uses_the_global_provider(self) -> None:
        _switches.SWITCHES.set("sql_trace_on_request", False)
        engine = sa.create_engine("sqlite://")
        set_sql_tracing(True)
        with self.tracer.start_as_current_span("request"), engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        set_sql_tracing(False)
        self.assertFalse(attached())
        with self.tracer.start_as_current_span("request"), engine.connect() as conn:
            conn.exec_driver_sql("SELECT 2")
        self.assertEqual([s.attributes["db.query.text"] for s in self.sql_spans()],
                         ["SELECT 1"])
        self.assertFalse(_switches.SWITCHES.trace_sqlalchemy)

    def test_uninstrument_detaches_and_is_idempotent(self) -> None:
        self.bind(trace_sqlalchemy=True)
        hook = SQLAlchemyHook()
        hook.instrument(self.conf, self.provider)
        hook.instrument(self.conf, self.provider)
        self.assertTrue(attached())
        hook.uninstrument()
        hook.uninstrument()
        self.assertFalse(attached())
        self.assertFalse(toggle.TOGGLE.installed)

    def test_opentelemetry_instrumentor_entry(self) -> None:
        self.bind(trace_sqlalchemy=True)
        inst = SQLAlchemyInstrumentor()
        inst.instrument(tracer_provider=self.provider)
        try:
            engine = sa.create_engine("sqlite://")
            with self.tracer.start_as_current_span("request"), engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            self.assertIs(inst.hook, SQLAlchemyInstrumentor().hook, "one shared hook")
        finally:
            inst.uninstrument()
        self.assertEqual(len(self.sql_spans()), 1)
        self.assertFalse(attached())


class SetupLoadsHookTest(SQLTestCase):
    def test_setup_loads_the_hook_off_and_sighup_turns_it_on(self) -> None:
        path = self.config_file({"enabled": True, "connection_string": "console://",
                                 "trace_sqlalchemy": False, "sql_trace_on_request": False})
        self.conf(args=[], project="os-trace-test", default_config_files=[path])
        self.assertTrue(os_trace_plugins.setup(self.conf, service="test", host="h"))
        self.assertIn("sqlalchemy", _hooks.loaded_hooks())
        self.assertTrue(toggle.TOGGLE.installed)
        self.assertFalse(attached())
        write_config(path, {"enabled": True, "connection_string": "console://",
                            "trace_sqlalchemy": True, "sql_trace_on_request": False})
        self.conf.mutate_config_files()
        self.assertTrue(attached())
        os_trace_plugins.shutdown()
        _hooks.unload_hooks()
        self.assertFalse(attached())
