"""OSProfiler side by side with zero-code activation (see auto.osprofiler_side).

The program initializes OSProfiler from the same ``[profiler]`` section, as
OpenStack services do; ours trace, OSProfiler is kept quiet: no span exported
twice, no ERROR from OSProfiler for our connection strings.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.auto_env import otel_env, run_instrumented, stored_spans
from tests.functional.test_auto_activation import OURS, SERVICE, AutoCase
from tests.otlp_receiver import OTLPReceiver


class TestOSProfilerQuiet(AutoCase):
    def test_otlp_connection_string_exports_each_span_once(self) -> None:
        with OTLPReceiver() as receiver:
            _, log = self.run_service(
                self.conf(connection_string=f"otlp://{receiver.endpoint}"),
                mode="osprofiler")
            spans = receiver.wait_until(lambda s: any(x.name == "request 1" for x in s))
        ids = [s.span_id for s in spans]
        self.assertEqual(len(ids), len(set(ids)), [s.name for s in spans])
        self.assertIn("init_from_conf skipped", log)
        self.assertNoError(log)

    def test_sqlite_connection_string_no_osprofiler_error(self) -> None:
        _, log = self.run_service(self.conf(), mode="osprofiler")
        self.assertIn("request 1", {s["name"] for s in stored_spans(self.store)})
        self.assertNoError(log)

    def test_without_us_osprofiler_logs_the_error(self) -> None:
        """The control: the clash the tests above prove gone is real."""
        argv = [sys.executable, SERVICE, "--config-file", self.conf()]
        proc = run_instrumented(argv, otel_env(disabled=OURS, AUTO_SVC_MODE="osprofiler"))
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        self.assertIn("ERROR osprofiler", proc.stderr)


class TestImportOrder(AutoCase):
    def _run(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                              capture_output=True, text=True, timeout=60,
                              env=dict(os.environ))

    def test_ours_first_then_osprofiler(self) -> None:
        proc = self._run("""
            from oslo_config import cfg
            from os_trace_plugins import opts
            opts.register_opts(cfg.CONF)
            import osprofiler.opts
            from osprofiler import opts as o
            o.set_defaults(cfg.CONF)
            cfg.CONF([])
            print(cfg.CONF.profiler.enabled, cfg.CONF.profiler.trace_rpc)
        """)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.split(), ["False", "True"])

    def test_osprofiler_first_then_ours(self) -> None:
        proc = self._run("""
            import osprofiler.opts
            from oslo_config import cfg
            from os_trace_plugins import opts
            opts.register_opts(cfg.CONF)
            cfg.CONF([])
            print(cfg.CONF.profiler.enabled, cfg.CONF.profiler.trace_rpc)
        """)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.split(), ["False", "True"])
