"""Zero-code activation: an unmodified program under ``opentelemetry-instrument``.

Each test starts tests/functional/auto_service.py (no line of ours in it) as
an operator would, with a ``[profiler]`` section only, and asserts on the
embedded store it wrote and on its log.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import unittest
from importlib.metadata import version
from typing import Any

from tests.auto_env import OURS, otel_env, run_instrumented, stored_spans
from tests.base import write_config

SERVICE = os.path.join(os.path.dirname(__file__), "auto_service.py")


class AutoCase(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="os-trace-auto-")
        self.store = os.path.join(self.tmp, "spans.db")

    def conf(self, **profiler: Any) -> str:
        values = {"enabled": True, "connection_string": f"sqlite:///{self.store}",
                  "trace_sqlalchemy": True}
        values.update(profiler)
        return write_config(os.path.join(self.tmp, "svc.conf"), values)

    def run_service(self, conf: str | None, mode: str = "", layers: int = 1,
                    **env: str) -> tuple[dict[str, Any], str]:
        argv = [sys.executable, SERVICE] + (["--config-file", conf] if conf else [])
        proc = run_instrumented(argv, otel_env(AUTO_SVC_MODE=mode, **env), layers=layers)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr

    def assertNoError(self, log: str) -> None:
        bad = [line for line in log.splitlines()
               if line.startswith(("ERROR", "CRITICAL")) or "Traceback" in line]
        self.assertEqual(bad, [], log[-3000:])


class TestActivation(AutoCase):
    def test_profiler_section_alone_traces_the_program(self) -> None:
        out, log = self.run_service(self.conf())
        spans = stored_spans(self.store)
        names = sorted(s["name"] for s in spans)
        self.assertIn("request 1", names)
        sql = [s for s in spans if s["kind"] == "CLIENT"]
        self.assertEqual(len(sql), 1, names)
        request = next(s for s in spans if s["name"] == "request 1")
        self.assertEqual(sql[0]["parent_id"], request["span_id"])
        self.assertEqual(request["resource"]["service.name"], "auto_service.py")
        self.assertEqual(request["resource"]["process.pid"], out["pid"])
        self.assertNoError(log)
        self.assertIn("tracing on for auto_service.py", log)

    def test_our_activation_imports_nothing_before_the_program(self) -> None:
        conf = self.conf()
        # every instrumentor of ours: activation, RPC, SQL, threads, WSGI servers
        with_ours, _ = self.run_service(conf)
        without, _ = self.run_service(conf, disabled=OURS)
        # whatever the peers' pre-instrument hook imports is in both
        self.assertEqual(with_ours["early"], without["early"])

    def test_service_name_from_configuration_wins(self) -> None:
        self.run_service(self.conf(service_name="placement-api"),
                         OTEL_SERVICE_NAME="otel-name")
        services = {s["resource"]["service.name"] for s in stored_spans(self.store)}
        self.assertEqual(services, {"placement-api"})

    def test_otel_service_name_wins_over_the_program_name(self) -> None:
        self.run_service(self.conf(), OTEL_SERVICE_NAME="otel-name")
        services = {s["resource"]["service.name"] for s in stored_spans(self.store)}
        self.assertEqual(services, {"otel-name"})

    def test_a_second_instrument_layer_changes_nothing(self) -> None:
        self.run_service(self.conf(), layers=2)
        spans = stored_spans(self.store)
        ids = [s["span_id"] for s in spans]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(sorted(s["name"] for s in spans if s["kind"] == "INTERNAL"),
                         ["request 1"])


class TestSampling(AutoCase):
    def test_sampling_rate_decides_with_our_sampler_entry_point(self) -> None:
        _, log = self.run_service(self.conf(sampling_rate=0.0), mode="mutate",
                                  OTEL_TRACES_SAMPLER="os_trace_plugins",
                                  AUTO_SVC_FROM="sampling_rate = 0.0",
                                  AUTO_SVC_TO="sampling_rate = 1.0")
        names = {s["name"] for s in stored_spans(self.store)}
        # rate 0 at start: request 1 unsampled; SIGHUP (mutate) to 1.0: request 2 kept
        self.assertIn("request 2", names)
        self.assertNotIn("request 1", names)
        self.assertNoError(log)

    def test_sampling_rate_with_a_foreign_sampler_is_reported(self) -> None:
        _, log = self.run_service(self.conf(sampling_rate=0.0),
                                  OTEL_TRACES_SAMPLER="parentbased_always_on")
        self.assertIn("request 1", {s["name"] for s in stored_spans(self.store)})
        self.assertEqual(log.count("[profiler] sampling_rate = 0.0 does not apply"), 1, log)


class TestLeftAlone(AutoCase):
    def test_enabled_false_installs_nothing(self) -> None:
        _, log = self.run_service(self.conf(enabled=False))
        self.assertFalse(os.path.exists(self.store))
        self.assertNoError(log)

    def test_no_profiler_section(self) -> None:
        path = os.path.join(self.tmp, "plain.conf")
        with open(path, "w") as f:
            f.write("[DEFAULT]\ndebug = false\n")
        _, log = self.run_service(path)
        self.assertNoError(log)
        self.assertIn("no [profiler] section", log)

    def test_program_that_never_parses_its_configuration(self) -> None:
        out, log = self.run_service(self.conf(), mode="nocfg")
        self.assertEqual(stored_spans(self.store), [])
        self.assertNoError(log)

    def test_bad_value_one_clear_line(self) -> None:
        _, log = self.run_service(self.conf(sampling_rate="lots"))
        lines = [line for line in log.splitlines() if "os_trace_plugins" in line
                 and line.startswith("ERROR")]
        self.assertEqual(len(lines), 1, log)
        self.assertIn("sampling_rate", lines[0])
        self.assertNotIn("Traceback", log)
        self.assertFalse(os.path.exists(self.store))

    def test_config_that_fails_to_parse_fails_as_without_us(self) -> None:
        path = os.path.join(self.tmp, "broken.conf")
        with open(path, "w") as f:
            f.write("[profiler\nenabled = true\n")
        argv = [sys.executable, SERVICE, "--config-file", path]
        ours = run_instrumented(argv, otel_env())
        bare = run_instrumented(argv, otel_env(disabled=OURS))
        self.assertNotEqual(ours.returncode, 0)
        self.assertEqual(ours.returncode, bare.returncode)
        self.assertEqual(ours.stderr.strip().splitlines()[-1],
                         bare.stderr.strip().splitlines()[-1])


class TestWorkers(AutoCase):
    def test_forked_worker_names_its_own_pid(self) -> None:
        out, log = self.run_service(self.conf(), mode="fork")
        spans = {s["name"]: s for s in stored_spans(self.store)}
        parent, child = spans["request 1"]["resource"], spans["request forked"]["resource"]
        self.assertEqual(parent["process.pid"], out["pid"])
        self.assertEqual(child["process.pid"], out["children"][0])
        self.assertNotEqual(parent["service.instance.id"], child["service.instance.id"])
        self.assertNoError(log)

    @unittest.skipIf(
        version("opentelemetry-instrumentation") < "0.6",
        "open: under opentelemetry-instrumentation 0.51 a spawned child starts without "
        "our provider; verified with 0.66 (the newest-releases layer)")
    def test_spawned_worker_is_set_up_again(self) -> None:
        out, log = self.run_service(self.conf(), mode="spawn")
        spans = {s["name"]: s for s in stored_spans(self.store)}
        self.assertIn("request spawned", spans, log[-3000:])
        child = spans["request spawned"]["resource"]
        self.assertEqual(child["process.pid"], out["children"][0])
        self.assertEqual(child["service.name"], "auto_service.py")
        self.assertNoError(log)


if __name__ == "__main__":
    unittest.main()
