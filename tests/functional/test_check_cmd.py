"""``os-trace check``: validate a configuration for deploy pipelines."""

from __future__ import annotations

import contextlib
import io

from os_trace_plugins.cmd._main import main
from tests.base import TestCase
from tests.otlp_receiver import OTLPReceiver


class TestCheck(TestCase):
    def run_cli(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
        return code, out.getvalue(), err.getvalue()

    def test_good_config(self) -> None:
        with OTLPReceiver() as receiver:
            path = self.config_file({"enabled": True,
                                     "connection_string": f"otlp://{receiver.endpoint}"})
            code, out, err = self.run_cli("check", "--config-file", path)
        self.assertEqual(code, 0, err)
        self.assertIn("OK: tracing on", out)

    def test_bad_scheme(self) -> None:
        path = self.config_file({"enabled": True, "connection_string": "zipkin://z:9411"})
        code, out, err = self.run_cli("check", "--config-file", path)
        self.assertEqual(code, 1)
        self.assertIn("unknown scheme 'zipkin'", err)
        self.assertIn("accepted:", err)
        self.assertNotIn("Traceback", err)

    def test_unreachable_collector_is_a_warning_and_no_connect(self) -> None:
        # setup() keeps tracing on while the collector is down: not a failure
        path = self.config_file({"enabled": True,
                                 "connection_string": "otlp://127.0.0.1:1"})
        code, out, err = self.run_cli("check", "--config-file", path)
        self.assertEqual(code, 0, err)
        self.assertIn("warning: [profiler] connection_string: collector 127.0.0.1:1 is "
                      "unreachable now", err)
        self.assertIn("OK: tracing on", out)
        code, _, err = self.run_cli("check", "--no-connect", "--config-file", path)
        self.assertEqual(code, 0, err)
        self.assertNotIn("unreachable", err)

    def test_bad_value_and_missing_file(self) -> None:
        path = self.config_file({"sampling_rate": "often",
                                 "connection_string": "console://"})
        code, _, err = self.run_cli("check", "--config-file", path)
        self.assertEqual(code, 1)
        self.assertIn("sampling_rate", err)
        code, _, err = self.run_cli("check", "--config-file", "/nonexistent/x.conf")
        self.assertEqual(code, 1)
        self.assertNotIn("Traceback", err)

    def test_hmac_key_warnings(self) -> None:
        path = self.config_file({"connection_string": "console://",
                                 "hmac_keys": "SECRET_KEY, ,k2"})
        code, _, err = self.run_cli("check", "--config-file", path)
        self.assertEqual(code, 0)
        self.assertIn("SECRET_KEY is public knowledge", err)
        self.assertIn("empty entries", err)
