"""setup()/shutdown(): provider, sampler, exporter by scheme, bad configuration."""

from __future__ import annotations

import logging
import socket

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import os_trace_plugins
from os_trace_plugins import _hooks
from os_trace_plugins._switches import SWITCHES
from tests.base import TestCase, make_conf, reset_globals


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

    def test_reuses_a_provider_the_host_installed(self) -> None:
        host_provider = TracerProvider()
        trace.set_tracer_provider(host_provider)
        conf = make_conf(enabled=True, connection_string="console://")
        self.assertTrue(os_trace_plugins.setup(conf))
        self.assertIs(trace.get_tracer_provider(), host_provider)
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

    def test_unreachable_collector_logs_and_leaves_tracing_off(self) -> None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        conf = make_conf(enabled=True, connection_string=f"otlp://127.0.0.1:{port}")
        with self.assertLogs("os_trace_plugins", logging.ERROR) as logs:
            self.assertFalse(os_trace_plugins.setup(conf))
        self.assertIn("unreachable", logs.records[0].getMessage())

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
