"""setup()/shutdown(): provider, sampler, exporter by scheme, bad configuration."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import os_trace_plugins
from os_trace_plugins import _hooks
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.export import _ids as ids
from os_trace_plugins.export import _sampler as sampler
from tests.base import TestCase, make_conf, reset_globals
from tests.otlp_receiver import OTLPReceiver


class TestSetup(TestCase):
    def setUp(self) -> None:
        super().setUp()
        reset_globals()  # no host provider unless a test installs one

    def test_disabled_installs_nothing(self) -> None:
        conf = make_conf(enabled=False)
        self.assertFalse(os_trace_plugins.setup(conf))
        self.assertNotIsInstance(trace.get_tracer_provider(), TracerProvider)
        self.assertEqual(_hooks.loaded_hooks(), {})
        self.assertFalse(os_trace_plugins.is_enabled())

    def test_enabled_builds_provider_with_resource_and_sampler(self) -> None:
        conf = make_conf(enabled=True, connection_string="console://", sampling_rate=0.5)
        self.assertTrue(os_trace_plugins.setup(conf, service="nova-conductor", host="h1"))
        self.assertTrue(os_trace_plugins.setup(conf))  # idempotent
        provider = trace.get_tracer_provider()
        self.assertIsInstance(provider, TracerProvider)
        assert isinstance(provider, TracerProvider)
        attrs = provider.resource.attributes
        self.assertEqual(attrs["service.name"], "nova-conductor")
        self.assertEqual(attrs["host.name"], "h1")
        self.assertTrue(str(attrs["service.instance.id"]).startswith("h1:"))
        self.assertIn("ParentBased", provider.sampler.get_description())
        self.assertEqual(SWITCHES.sampling_rate, 0.5)
        os_trace_plugins.shutdown()
        os_trace_plugins.shutdown()  # idempotent
        self.assertFalse(os_trace_plugins.is_enabled())

    def test_service_name_option_wins(self) -> None:
        conf = make_conf(enabled=True, connection_string="console://",
                         service_name="from-config")
        os_trace_plugins.setup(conf, service="from-code")
        provider = trace.get_tracer_provider()
        assert isinstance(provider, TracerProvider)
        self.assertEqual(provider.resource.attributes["service.name"], "from-config")

    def test_live_sampling_rate(self) -> None:
        conf = make_conf(enabled=True, connection_string="console://", sampling_rate=0.0)
        os_trace_plugins.setup(conf)
        tracer = trace.get_tracer("t")
        self.assertFalse(tracer.start_span("a").is_recording())
        SWITCHES.set("sampling_rate", 1.0)  # what SIGHUP does
        self.assertTrue(tracer.start_span("b").is_recording())

    def test_own_provider_hands_out_requested_trace_ids(self) -> None:
        os_trace_plugins.setup(make_conf(enabled=True, connection_string="console://"))
        provider = trace.get_tracer_provider()
        self.assertTrue(ids.honoured(provider))
        with ids.requested(0x1234):
            span = trace.get_tracer("t").start_span("signed root")
        self.assertEqual(span.get_span_context().trace_id, 0x1234)

    def test_reuses_a_provider_the_host_installed(self) -> None:
        host_provider = TracerProvider()
        trace.set_tracer_provider(host_provider)
        conf = make_conf(enabled=True, connection_string="console://", sampling_rate=0.25)
        with self.assertLogs("os_trace_plugins", logging.INFO) as logs:
            self.assertTrue(os_trace_plugins.setup(conf))
        self.assertIs(trace.get_tracer_provider(), host_provider)
        said = [r for r in logs.records if "host installed" in r.getMessage()]
        self.assertEqual(len(said), 1)
        self.assertEqual(said[0].levelno, logging.WARNING)
        msg = said[0].getMessage()
        self.assertIn("[profiler] sampling_rate = 0.25 does not apply", msg)
        self.assertIn("OTEL_TRACES_SAMPLER=os_trace_plugins", msg)
        self.assertIn("OTEL_PYTHON_ID_GENERATOR=os_trace_plugins", msg)
        # and indeed: the host's always-on sampler records every root
        self.assertTrue(trace.get_tracer("t").start_span("root").is_recording())
        os_trace_plugins.shutdown()
        host_provider.shutdown()

    def test_host_provider_built_with_ours_is_quiet(self) -> None:
        host_provider = TracerProvider(sampler=sampler.from_env("ignored"),
                                       id_generator=ids.RequestableIdGenerator())
        trace.set_tracer_provider(host_provider)
        conf = make_conf(enabled=True, connection_string="console://", sampling_rate=0.0)
        with self.assertLogs("os_trace_plugins", logging.INFO) as logs:
            os_trace_plugins.setup(conf)
        said = [r for r in logs.records if "host installed" in r.getMessage()]
        self.assertEqual([r.levelno for r in said], [logging.INFO])
        self.assertNotIn("does not apply", said[0].getMessage())
        self.assertFalse(trace.get_tracer("t").start_span("root").is_recording())
        os_trace_plugins.shutdown()
        host_provider.shutdown()

    def test_bad_scheme_logs_one_clear_line_and_service_runs(self) -> None:
        conf = make_conf(enabled=True, connection_string="zipkin://x:9411")
        with self.assertLogs("os_trace_plugins", logging.ERROR) as logs:
            self.assertFalse(os_trace_plugins.setup(conf))
        self.assertEqual(len(logs.records), 1)
        msg = logs.records[0].getMessage()
        self.assertIn("[profiler] connection_string = 'zipkin://x:9411'", msg)
        self.assertIn("unknown scheme 'zipkin'", msg)
        self.assertIn("accepted: otlp://HOST:PORT", msg)
        self.assertEqual(_hooks.loaded_hooks(), {})

    def test_collector_down_at_start_keeps_tracing_on_and_exports_once_back(self) -> None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        conf = make_conf(enabled=True, connection_string=f"otlp://127.0.0.1:{port}",
                         export_timeout=2.0)
        with self.assertLogs("os_trace_plugins", logging.INFO) as logs:
            self.assertTrue(os_trace_plugins.setup(conf, service="nova-api"))
        warned = [r for r in logs.records if r.levelno == logging.WARNING]
        self.assertEqual(len(warned), 1, [r.getMessage() for r in logs.records])
        self.assertIn(f"collector 127.0.0.1:{port} is unreachable now", warned[0].getMessage())
        self.assertIn("exported once it is back", warned[0].getMessage())
        self.assertFalse([r for r in logs.records if r.levelno >= logging.ERROR])
        tracer = trace.get_tracer("t")
        with tracer.start_as_current_span("during the outage"):
            pass
        receiver = OTLPReceiver(port=port).start()  # the collector is back
        try:
            with tracer.start_as_current_span("after"):
                pass
            os_trace_plugins.shutdown()
            names = {x.name for x in receiver.wait_for(1)}
        finally:
            receiver.stop()
        self.assertIn("after", names)

    def test_shutdown_restores_the_hosts_propagator(self) -> None:
        from opentelemetry import propagate
        from opentelemetry.propagators.composite import CompositePropagator

        from os_trace_plugins.export import _propagation as propagation

        hosts = CompositePropagator([])  # e.g. B3 only, installed by the host
        propagate.set_global_textmap(hosts)
        os_trace_plugins.setup(make_conf(enabled=True, connection_string="console://"))
        self.assertIs(propagate.get_global_textmap(), propagation.PROPAGATOR)
        os_trace_plugins.shutdown()
        self.assertIs(propagate.get_global_textmap(), hosts)

    def test_shutdown_keeps_a_propagator_set_after_setup(self) -> None:
        from opentelemetry import propagate
        from opentelemetry.propagators.composite import CompositePropagator

        os_trace_plugins.setup(make_conf(enabled=True, connection_string="console://"))
        later = CompositePropagator([])
        propagate.set_global_textmap(later)  # the host chose again after setup()
        os_trace_plugins.shutdown()
        self.assertIs(propagate.get_global_textmap(), later)

    def test_broken_config_value_never_raises(self) -> None:
        from oslo_config import cfg

        from os_trace_plugins import opts

        path = self.config_file({"enabled": True, "connection_string": "console://",
                                 "max_queue_size": "lots"})
        conf = cfg.ConfigOpts()
        opts.register_opts(conf)
        conf(args=[], default_config_files=[path])
        with self.assertLogs("os_trace_plugins", logging.ERROR) as logs:
            self.assertFalse(os_trace_plugins.setup(conf))
        self.assertIn("max_queue_size", logs.records[0].getMessage())


class TestSDKConfigurator(TestCase):
    """The public way to have [profiler] sampling on a provider the SDK's
    configurator builds (``opentelemetry-instrument``): our sampler factory and
    id generator named by OTEL_TRACES_SAMPLER / OTEL_PYTHON_ID_GENERATOR.

    The entry points are declared here in a throw-away dist-info (the same
    lines setup.cfg declares), so the test exercises the SDK's own loading."""

    def test_opentelemetry_instrument_builds_our_sampler_and_ids(self) -> None:
        dist = os.path.join(self.tmpdir, "os_trace_env_points-0.dist-info")
        os.makedirs(dist)
        with open(os.path.join(dist, "METADATA"), "w") as f:
            f.write("Metadata-Version: 2.1\nName: os-trace-env-points\nVersion: 0\n")
        with open(os.path.join(dist, "entry_points.txt"), "w") as f:
            f.write("[opentelemetry_traces_sampler]\n"
                    "os_trace_plugins = os_trace_plugins.export._sampler:from_env\n"
                    "[opentelemetry_id_generator]\n"
                    "os_trace_plugins = os_trace_plugins.export._ids:RequestableIdGenerator\n")
        env = dict(os.environ, PYTHONPATH=self.tmpdir, OTEL_TRACES_SAMPLER="os_trace_plugins",
                   OTEL_PYTHON_ID_GENERATOR="os_trace_plugins", OTEL_TRACES_EXPORTER="none",
                   OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
                   OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="*")
        code = ("from opentelemetry import trace\n"
                "p = trace.get_tracer_provider()\n"
                "print(type(p.sampler).__name__, type(p.id_generator).__name__)\n")
        script = os.path.join(os.path.dirname(sys.executable), "opentelemetry-instrument")
        out = subprocess.run([script, sys.executable, "-c", code], env=env,
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.split(), ["ProfilerSampler", "RequestableIdGenerator"],
                         out.stderr)
