"""The secret scan can fail: a planted secret is found in a span, a store row,
an OTLP payload, and a pytest run that exports one exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from os_trace_plugins.store._exporter import SQLiteSpanExporter
from tests import leakscan
from tests.secret_values import MARK, SECRETS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: a mark of its own: the session's scanner (MARK) must not see the planted value
OTHER_MARK = "pLnT3d"
PLANTED = f"{OTHER_MARK}-planted-0000"


def _spans(where: str) -> list:  # type: ignore[type-arg]
    memory = InMemorySpanExporter()
    resource = {"service.name": "svc"}
    if where == "resource":
        resource["deployment.token"] = PLANTED
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("op") as span:
        if where == "attribute":
            span.set_attribute("url.full", f"https://h/?token={PLANTED}")
        elif where == "list":
            span.set_attribute("args", ["a", PLANTED[:12] + "cut"])
        elif where == "event":
            span.add_event("exception", {"exception.message": f"bad {PLANTED}"})
        elif where == "status":
            span.set_status(Status(StatusCode.ERROR, f"login {PLANTED} refused"))
        elif where == "name":
            span.update_name(f"GET /{PLANTED}")
    provider.shutdown()
    return list(memory.get_finished_spans())


class ScannerTest(unittest.TestCase):
    def setUp(self) -> None:
        self.scanner = leakscan.Scanner({"planted": PLANTED}, OTHER_MARK)

    def test_clean_spans_pass(self) -> None:
        self.scanner.scan_spans(_spans("none"), "test")
        self.assertEqual(self.scanner.findings, [])
        self.assertEqual(self.scanner.spans, 1)

    def test_planted_secret_found_wherever_it_is(self) -> None:
        for where in ("attribute", "list", "event", "status", "name", "resource"):
            with self.subTest(where=where):
                scanner = leakscan.Scanner({"planted": PLANTED}, OTHER_MARK)
                scanner.scan_spans(_spans(where), "test")
                self.assertEqual(len(scanner.findings), 1, where)
                expected = "mark" if where == "list" else "planted"  # cut: mark alone
                self.assertEqual(scanner.findings[0][1], expected)

    def test_store_rows_and_payloads(self) -> None:
        tmp = tempfile.mkdtemp()
        path = os.path.join(tmp, "spans.db")
        exporter = SQLiteSpanExporter(path)
        exporter.export(_spans("none") + _spans("event"))
        exporter.shutdown()
        self.scanner.scan_tree(tmp)
        self.assertEqual(self.scanner.rows, 2)
        self.assertEqual(self.scanner.stores, 1)
        self.assertEqual([f[1] for f in self.scanner.findings], ["planted"])
        self.scanner.scan_payload(b"\x0a\x03abc" + PLANTED.encode() + b"\xff")
        self.assertEqual(len(self.scanner.findings), 2)

    def test_every_registered_secret_carries_the_mark(self) -> None:
        self.assertGreaterEqual(len(SECRETS), 8)
        with self.assertRaises(ValueError):
            leakscan.Scanner({"unmarked": "hunter2"})
        self.assertTrue(all(MARK in v for v in SECRETS.values()))

    def test_session_fails_when_a_span_leaks(self) -> None:
        tmp = tempfile.mkdtemp()
        test = os.path.join(tmp, "test_plant.py")
        with open(test, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent("""
                from opentelemetry.sdk.trace import TracerProvider
                from opentelemetry.sdk.trace.export import SimpleSpanProcessor
                from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                    InMemorySpanExporter)
                from tests.secret_values import HMAC_KEY

                def test_leaks():
                    p = TracerProvider()
                    p.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
                    with p.get_tracer("t").start_as_current_span("x") as s:
                        s.set_attribute("oops", HMAC_KEY)
            """))
        env = dict(os.environ, OS_TRACE_FIGURES="")
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "-p", "no:randomly", "-p", "tests.conftest", "--rootdir", tmp, test],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        out = proc.stdout + proc.stderr
        self.assertEqual(proc.returncode, 1, out)
        self.assertIn("1 passed", out)  # the test itself passed; the scan failed the run
        self.assertIn("SECRETS FOUND", out)
        self.assertIn("hmac-key: InMemorySpanExporter", out)
        self.assertIn("secrets_found: 1", out)
