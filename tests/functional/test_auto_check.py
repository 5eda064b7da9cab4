"""``os-trace check`` warns about each clash it can detect (cmd/_check.py)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import unittest
from unittest import mock

from os_trace_plugins.cmd._check import clash_warnings
from os_trace_plugins.cmd._main import main
from tests.base import TestCase, make_conf

QUIET_ENV = {"OTEL_TRACES_EXPORTER": "none", "OTEL_TRACES_SAMPLER": "os_trace_plugins",
             "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "sqlalchemy,oslo_messaging"}


class TestClashes(TestCase):
    def check(self, profiler: dict[str, object], env: dict[str, str],
              extra: str = "") -> tuple[int, str]:
        path = self.config_file(profiler)
        if extra:
            with open(path, "a") as f:
                f.write(extra)
        err = io.StringIO()
        with mock.patch.dict(os.environ, env, clear=False), \
                contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(["check", "--no-connect", "--config-file", path])
        return code, err.getvalue()

    def test_osprofiler_otlp_double_export(self) -> None:
        code, err = self.check({"enabled": True, "connection_string": "otlp://127.0.0.1:4318"},
                               QUIET_ENV)
        self.assertEqual(code, 0)
        self.assertIn("every span is exported twice", err)

    def test_osprofiler_sqlite_error(self) -> None:
        code, err = self.check({"enabled": True, "connection_string": "sqlite:///x.db"},
                               QUIET_ENV)
        self.assertEqual(code, 0)
        self.assertIn("logs an ERROR with a traceback", err)
        self.assertNotIn("exported twice", err)

    @unittest.skipUnless(
        importlib.util.find_spec("opentelemetry.instrumentation.sqlalchemy") is not None,
        "the peers whose clashes this names come with the bench extra, which the "
        "oldest-releases virtualenv does not install")
    def test_peers_and_otel_precedence(self) -> None:
        env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "always_on",
               "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": ""}
        _, err = self.check({"enabled": True, "connection_string": "sqlite:///x.db",
                             "sampling_rate": 0.5}, env,
                            extra="\n[profiler_otlp]\nservice_name_prefix = x\n")
        for expected in ("opentelemetry-instrumentation-sqlalchemy is installed",
                         "opentelemetry-instrumentation-oslo-messaging is installed",
                         "selects oslo.service's backend",
                         "OTEL_TRACES_EXPORTER=otlp",
                         "sampling_rate = 0.5 is not applied",
                         "[profiler_otlp] is OSProfiler's own section"):
            self.assertIn(expected, err)

    def test_quiet_environment(self) -> None:
        _, err = self.check({"enabled": True, "connection_string": "sqlite:///x.db"},
                            QUIET_ENV)
        self.assertNotIn("second span", err)
        self.assertNotIn("OTEL_TRACES_EXPORTER", err)
        self.assertNotIn("sampling_rate", err)

    def test_nothing_installed_nothing_to_say(self) -> None:
        conf = make_conf(enabled=True, connection_string="otlp://h:4318", sampling_rate=0.1)
        values = {"connection_string": "otlp://h:4318", "sampling_rate": 0.1}
        self.assertEqual(clash_warnings(conf, values, env={}, installed=lambda _: False), [])

    def test_disabled_tracing_has_no_clashes(self) -> None:
        _, err = self.check({"enabled": False, "connection_string": "otlp://h:4318"}, {})
        self.assertNotIn("exported twice", err)
