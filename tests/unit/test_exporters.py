"""connection_string parsing: every scheme, and clear errors for bad ones."""

from __future__ import annotations

import os
import socket
import unittest

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from os_trace_plugins.export import _exporters as exporters
from os_trace_plugins.export._exporters import ConfigError, parse_connection_string


class TestParse(unittest.TestCase):
    def test_otlp_http(self) -> None:
        t = parse_connection_string("otlp://collector:4318")
        self.assertEqual((t.kind, t.endpoint), ("otlp-http", "http://collector:4318/v1/traces"))
        t = parse_connection_string("otlp://collector")
        self.assertEqual(t.port, 4318)
        t = parse_connection_string("otlp+https://c.example:443/custom/path")
        self.assertEqual(t.endpoint, "https://c.example:443/custom/path")
        t = parse_connection_string("otlp://[::1]:4318")
        self.assertEqual(t.endpoint, "http://[::1]:4318/v1/traces")

    def test_jaeger_is_otlp_to_its_native_port(self) -> None:
        t = parse_connection_string("jaeger://jaeger.local")
        self.assertEqual((t.kind, t.endpoint), ("otlp-http", "http://jaeger.local:4318/v1/traces"))
        with self.assertRaisesRegex(ConfigError, "legacy Jaeger"):
            parse_connection_string("jaeger://jaeger.local:6831")

    def test_grpc(self) -> None:
        t = parse_connection_string("otlp+grpc://c:4317")
        self.assertEqual((t.kind, t.endpoint), ("otlp-grpc", "c:4317"))

    def test_sqlite_follows_sqlalchemy_convention(self) -> None:
        self.assertEqual(parse_connection_string("sqlite:///rel/spans.db").endpoint,
                         "rel/spans.db")
        self.assertEqual(parse_connection_string("sqlite:////var/lib/x.db").endpoint,
                         "/var/lib/x.db")
        self.assertEqual(parse_connection_string("sqlite://").endpoint,
                         exporters.default_store_path())

    def test_default_store_under_state_dir(self) -> None:
        old = os.environ.get("OS_TRACE_STATE_DIR")
        os.environ["OS_TRACE_STATE_DIR"] = "/tmp/st"
        try:
            self.assertEqual(exporters.default_store_path(), "/tmp/st/spans.db")
        finally:
            if old is None:
                del os.environ["OS_TRACE_STATE_DIR"]
            else:
                os.environ["OS_TRACE_STATE_DIR"] = old

    def test_osprofiler_default_falls_back_to_the_store(self) -> None:
        t = parse_connection_string("messaging://")
        self.assertEqual(t.kind, "sqlite")

    def test_errors_name_the_option_and_what_is_accepted(self) -> None:
        for bad in ("", "   ", "foo://x", "nocolon", "otlp://", "otlp://h:notaport",
                    "sqlite://host/x.db", "redis://127.0.0.1:6379"):
            with self.assertRaises(ConfigError, msg=bad) as cm:
                parse_connection_string(bad)
            self.assertIn("[profiler] connection_string", str(cm.exception))
            self.assertIn("accepted: otlp://HOST:PORT", str(cm.exception))

    def test_build(self) -> None:
        self.assertIsInstance(exporters.build_exporter("otlp://127.0.0.1:4318"),
                              OTLPSpanExporter)
        self.assertIsInstance(exporters.build_exporter("console://"), ConsoleSpanExporter)

    def test_probe_reports_unreachable_collector(self) -> None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        with self.assertRaisesRegex(exporters.Unreachable, "unreachable now") as cm:
            exporters.check_connection_string(f"otlp://127.0.0.1:{port}")
        self.assertIsInstance(cm.exception, ConfigError)  # what older callers catch
        exporters.check_connection_string(f"otlp://127.0.0.1:{port}", reach=False)


class TestIdsAndSampler(unittest.TestCase):
    """The id generator hands out a requested root trace id once; the root
    sampler keeps verified-signature roots whatever the rate."""

    def test_requested_trace_id_is_used_once_then_random(self) -> None:
        from opentelemetry.sdk.trace import TracerProvider

        from os_trace_plugins.export import _ids as ids

        provider = TracerProvider(id_generator=ids.RequestableIdGenerator())
        tracer = provider.get_tracer("t")
        self.assertTrue(ids.honoured(provider))
        self.assertFalse(ids.honoured(TracerProvider()))
        with ids.requested(0xABC):
            first = tracer.start_span("root")
            second = tracer.start_span("another root")
        after = tracer.start_span("later")
        self.assertEqual(first.get_span_context().trace_id, 0xABC)
        self.assertNotIn(second.get_span_context().trace_id, (0, 0xABC))
        self.assertNotIn(after.get_span_context().trace_id, (0, 0xABC))
        flags = first.get_span_context().trace_flags
        if hasattr(flags, "random_trace_id"):  # W3C level 2 flags: SDK 1.3x and later
            self.assertTrue(flags.random_trace_id)

    def test_signed_roots_kept_at_rate_zero(self) -> None:
        from opentelemetry.sdk.trace import TracerProvider

        from os_trace_plugins._switches import SWITCHES
        from os_trace_plugins.export import _sampler as sampler
        from os_trace_plugins.export._trust import TRUST_ATTRIBUTE

        SWITCHES.set("sampling_rate", 0.0)
        self.addCleanup(SWITCHES.reset)
        tracer = TracerProvider(sampler=sampler.build_sampler()).get_tracer("t")
        for trust, kept in (("signed", True), ("osprofiler", True),
                            ("unsigned-linked", False), ("unsigned-trusted", False)):
            span = tracer.start_span("GET", attributes={TRUST_ATTRIBUTE: trust})
            self.assertIs(span.is_recording(), kept, trust)
            if kept:
                self.assertEqual(span.attributes[TRUST_ATTRIBUTE], trust)
        self.assertFalse(tracer.start_span("GET").is_recording())
