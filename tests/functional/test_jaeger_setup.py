"""``[profiler] sampler = jaeger_remote`` through setup() and SIGHUP, and the
``opentelemetry_traces_sampler`` entry points as the SDK loads them."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
from importlib import metadata
from unittest import mock

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler
from oslo_config import cfg

import os_trace_plugins
from os_trace_plugins import opts
from os_trace_plugins.cmd import _check as check
from os_trace_plugins.export._jaeger_remote import JaegerRemoteSampler
from os_trace_plugins.export._sampler import ProfilerSampler
from tests.base import TestCase, write_config
from tests.strategy_server import StrategyServer, per_operation, probabilistic

ENTRY_POINTS = {"jaeger_remote": "os_trace_plugins.export:jaeger_remote_from_env",
                "parentbased_jaeger_remote":
                    "os_trace_plugins.export:parentbased_jaeger_remote_from_env"}


class TestProfilerOptions(TestCase):
    """SIGHUP switches ratio <-> remote and changes the endpoint, live."""

    def _setup(self, profiler: dict[str, object]) -> tuple[cfg.ConfigOpts, str]:
        gc.collect()  # samplers of earlier tests stop following the switches
        path = self.config_file(profiler)
        conf = cfg.ConfigOpts()
        opts.register_opts(conf)
        conf(args=[], project="nova", default_config_files=[path])
        os_trace_plugins.shutdown()
        self.provider.shutdown()
        from tests.base import reset_globals
        reset_globals()
        self.assertTrue(os_trace_plugins.setup(conf, service="nova-api", host="h1"))
        provider = trace.get_tracer_provider()
        assert isinstance(provider, TracerProvider)
        self.memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.root = provider.get_tracer("t")
        return conf, path

    def _sampled(self, name: str, n: int = 2000) -> float:
        self.memory.clear()
        for _ in range(n):
            self.root.start_span(name).end()
        return len(self.memory.get_finished_spans()) / n

    def _remote(self) -> JaegerRemoteSampler | None:
        sampler = trace.get_tracer_provider().sampler  # type: ignore[attr-defined]
        self.assertIsInstance(sampler, ProfilerSampler)
        return sampler.root_sampler.remote

    def test_sighup_switches_sampler_and_endpoint(self) -> None:
        base = {"enabled": True, "connection_string": "sqlite:///" +
                os.path.join(self.tmpdir, "spans.db"), "sampling_rate": 0.0}
        with StrategyServer(probabilistic(1.0)) as first, \
                StrategyServer(per_operation(0.0, 0.0, 0.0, {"POST /servers": 1.0})) as second:
            conf, path = self._setup(base)
            self.assertIsNone(self._remote())
            errors: list[str] = []
            handler = logging.Handler(logging.ERROR)
            handler.emit = lambda r: errors.append(r.getMessage())  # type: ignore[method-assign]
            logging.getLogger("os_trace_plugins").addHandler(handler)
            self.addCleanup(logging.getLogger("os_trace_plugins").removeHandler, handler)
            self.assertEqual(self._sampled("GET /servers"), 0.0)

            remote_first = dict(base, sampler="jaeger_remote", sampling_endpoint=first.endpoint,
                                sampling_refresh_interval=0.1)
            write_config(path, remote_first)
            conf.mutate_config_files()
            remote = self._remote()
            assert remote is not None
            self.assertTrue(remote.wait_polls(1))
            self.assertIn(["nova-api"], [q.get("service") for q in first.queries])
            self.assertEqual(self._sampled("GET /servers"), 1.0)

            write_config(path, dict(remote_first, sampling_refresh_interval=0.2))
            conf.mutate_config_files()
            self.assertIs(self._remote(), remote, "an interval change needs no new poller")
            self.assertEqual(remote.interval, 0.2)

            write_config(path, dict(remote_first, sampling_endpoint=second.endpoint))
            conf.mutate_config_files()
            moved = self._remote()
            assert moved is not None and moved is not remote
            remote.join(5)
            self.assertFalse(remote.alive, "the old endpoint's poller still runs")
            self.assertTrue(moved.wait_polls(1))
            self.assertEqual(self._sampled("POST /servers"), 1.0)
            self.assertEqual(self._sampled("GET /servers"), 0.0)

            write_config(path, base)  # back to ratio, sampling_rate 0
            conf.mutate_config_files()
            self.assertIsNone(self._remote())
            moved.join(5)
            self.assertFalse(moved.alive)
            self.assertEqual(self._sampled("POST /servers"), 0.0)
            self.assertEqual(errors, [])
            ours = [q for q in first.queries + second.queries if q["service"] == ["nova-api"]]
            self.assertEqual(len(ours), remote.polls + moved.polls,
                             "a poller nobody used polled")

    def test_remote_without_endpoint_samples_at_the_rate(self) -> None:
        records: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda r: records.append(r.getMessage())  # type: ignore[method-assign]
        logging.getLogger("os_trace_plugins").addHandler(handler)
        self.addCleanup(logging.getLogger("os_trace_plugins").removeHandler, handler)
        self._setup({"enabled": True, "sampler": "jaeger_remote", "sampling_rate": 1.0,
                     "connection_string": "sqlite:///" + os.path.join(self.tmpdir, "s.db")})
        self.assertIsNone(self._remote())
        self.assertEqual(self._sampled("GET /servers", n=100), 1.0)
        self.assertEqual(len([m for m in records if "needs sampling_endpoint" in m
                              and "nova-api samples" in m]), 1, records)

    def test_shutdown_stops_the_poller(self) -> None:
        with StrategyServer(probabilistic(0.5)) as server:
            self._setup({"enabled": True, "sampler": "jaeger_remote",
                         "sampling_endpoint": server.endpoint,
                         "connection_string": "sqlite:///" +
                         os.path.join(self.tmpdir, "s.db")})
            remote = self._remote()
            assert remote is not None
            self.assertTrue(remote.wait_polls(1))
            os_trace_plugins.shutdown()
            remote.join(5)
            self.assertFalse(remote.alive)

    def test_check_command_reports_the_sampler(self) -> None:
        with StrategyServer(probabilistic(0.5)) as server:
            conf = self.bind(enabled=True, sampler="jaeger_remote",
                             sampling_endpoint=server.endpoint, service_name="nova-api",
                             connection_string="console://")
            problems, warnings = check.check_conf(conf)
            self.assertEqual(problems, [])
            self.assertFalse([w for w in warnings if "sampling_endpoint" in w], warnings)
            values = {o.dest: getattr(conf.profiler, o.dest) for o in opts.list_opts()[0][1]}
            self.assertIn("serves probabilistic 0.5 for nova-api",
                          check.sampling_report(values)[1])
            self.assertEqual(server.queries[-1]["service"], ["nova-api"])
            server.status(500)
            self.assertIn("HTTP 500", " ".join(check.check_conf(conf)[1]))
            conf.set_override("sampling_endpoint", "localhost:5778", group="profiler")
            problems, warnings = check.check_conf(conf, reach=False)
            self.assertEqual(problems, [])
            self.assertTrue(any("not an http:// or https:// URL" in w for w in warnings),
                            warnings)


class TestEntryPoints(TestCase):
    """What ``OTEL_TRACES_SAMPLER=jaeger_remote`` finds: the installed
    distribution's entry points (reinstall after editing setup.cfg)."""

    def _load(self, name: str) -> Sampler:
        found = {ep.name: ep for ep in metadata.entry_points(group="opentelemetry_traces_sampler")}
        self.assertIn(name, found, "entry point missing: reinstall (pip install -e .)")
        self.assertEqual(found[name].value, ENTRY_POINTS[name])
        return found[name].load()

    def test_entry_points_build_samplers_from_the_java_keys(self) -> None:
        with StrategyServer(probabilistic(1.0)) as server, \
                mock.patch.dict(os.environ, {"OTEL_SERVICE_NAME": "glance-api"}):
            arg = f"endpoint={server.endpoint},pollingIntervalMs=100,initialSamplingRate=0.25"
            plain = self._load("jaeger_remote")(arg)
            self.addCleanup(plain.close)
            self.assertIsInstance(plain, JaegerRemoteSampler)
            self.assertEqual((plain.interval, plain.service), (0.1, "glance-api"))
            self.assertEqual(plain.fallback.get_description(), "TraceIdRatioBased{0.25}")
            parent = self._load("parentbased_jaeger_remote")(arg)
            self.assertIsInstance(parent, ParentBased)
            root = parent._root  # the SDK keeps its root sampler there
            self.addCleanup(root.close)
            self.assertTrue(plain.wait_polls(1) and root.wait_polls(1))
            self.assertEqual([q["service"] for q in server.queries[:2]],
                             [["glance-api"], ["glance-api"]])

    def test_opentelemetry_instrument_uses_it(self) -> None:
        """An unrelated OpenTelemetry service started by the SDK's configurator:
        initialSamplingRate until the endpoint answers, then the served rate."""
        with StrategyServer() as server:
            server.status(500)
            env = dict(os.environ, OTEL_TRACES_SAMPLER="parentbased_jaeger_remote",
                       OTEL_TRACES_SAMPLER_ARG=f"endpoint={server.endpoint},"
                                               "pollingIntervalMs=100,initialSamplingRate=1",
                       OTEL_SERVICE_NAME="keystone", OTEL_TRACES_EXPORTER="none",
                       OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
                       OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="*")
            code = ("import sys\n"
                    "from opentelemetry import trace\n"
                    "p = trace.get_tracer_provider()\n"
                    "t = p.get_tracer('x')\n"
                    "print(p.sampler.get_description().split('{')[0],\n"
                    "      t.start_span('a').is_recording(), flush=True)\n"
                    "sys.stdin.readline()\n"
                    "root = p.sampler._root\n"
                    "root.wait_polls(root.polls + 2)\n"
                    "print(t.start_span('a').is_recording(), flush=True)\n")
            script = os.path.join(os.path.dirname(sys.executable), "opentelemetry-instrument")
            child = subprocess.Popen([script, sys.executable, "-c", code], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
            try:
                assert child.stdout is not None and child.stdin is not None
                first = child.stdout.readline().split()
                server.set(probabilistic(0.0))
                child.stdin.write("go\n")
                child.stdin.flush()
                out, err = child.communicate(timeout=60)
            finally:
                child.kill()
            self.assertEqual(child.returncode, 0, err)
            self.assertEqual(first + out.split(), ["ParentBased", "True", "False"], err)
            self.assertEqual(server.queries[0]["service"], ["keystone"])
