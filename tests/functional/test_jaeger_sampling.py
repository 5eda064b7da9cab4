"""Jaeger remote sampling against a real strategy endpoint on loopback.

The endpoint (tests/strategy_server.py) serves Jaeger's documented JSON and
the tests change it between polls; every figure is a count of finished spans
of a real SDK TracerProvider (in-memory exporter), 10,000 roots per
strategy, checked within 4.5 standard deviations of the binomial.
"""

from __future__ import annotations

import math
import os
import threading
import time

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

from os_trace_plugins.export._jaeger_remote import JaegerRemoteSampler
from os_trace_plugins.export._trust import TRUST_ATTRIBUTE
from tests.base import TestCase
from tests.figures import report
from tests.strategy_server import (
    StrategyServer,
    per_operation,
    probabilistic,
    rate_limiting,
)

N = 10_000


def _tolerance(p: float, n: int = N) -> float:
    return 4.5 * math.sqrt(max(p * (1 - p), 1e-4) / n) + 2.0 / n


class RemoteCase(TestCase):
    """A provider whose sampler is parent-based over a Jaeger remote sampler."""

    interval = 0.1

    def remote(self, server: StrategyServer, fallback: float = 0.0,
               service: str = "nova-api") -> JaegerRemoteSampler:
        remote = JaegerRemoteSampler(server.endpoint, service, TraceIdRatioBased(fallback),
                                     self.interval)
        self.addCleanup(remote.close)
        self.assertTrue(remote.wait_polls(1), "the first poll never finished")
        return remote

    def traced(self, root: Sampler) -> tuple[trace.Tracer, InMemorySpanExporter]:
        exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=ParentBased(root=root))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        self.addCleanup(provider.shutdown)
        return provider.get_tracer("jaeger-test"), exporter

    @staticmethod
    def fraction(tracer: trace.Tracer, exporter: InMemorySpanExporter, name: str,
                 n: int = N, attributes: dict[str, str] | None = None) -> float:
        exporter.clear()
        for _ in range(n):
            tracer.start_span(name, attributes=attributes).end()
        return len(exporter.get_finished_spans()) / n

    def switch(self, server: StrategyServer, remote: JaegerRemoteSampler, body: str) -> None:
        """Serve ``body`` and wait for two polls more: one began after the change."""
        server.set(body)
        self.assertTrue(remote.wait_polls(remote.polls + 2), "the poller stopped")


class TestProbabilistic(RemoteCase):

    def test_fraction_follows_each_strategy_served(self) -> None:
        with StrategyServer(probabilistic(0.5)) as server:
            remote = self.remote(server)
            tracer, exporter = self.traced(remote)
            for rate in (0.5, 0.1, 0.9, 0.0, 1.0, 0.01):
                if rate != 0.5:
                    self.switch(server, remote, probabilistic(rate))
                got = self.fraction(tracer, exporter, "GET /servers")
                self.assertLessEqual(abs(got - rate), _tolerance(rate),
                                     f"served {rate}, sampled {got}")
                report("jaeger remote", f"probabilistic {rate}", roots=N, sampled=got)
            self.assertEqual(server.queries[0].get("service"), ["nova-api"])
            self.assertEqual(server.paths[0], "/sampling")

    def test_rate_agrees_with_the_sdk_ratio_on_each_trace_id(self) -> None:
        """Probabilistic is the SDK's TraceIdRatioBased rule: a service on the
        SDK's ratio and one on the remote strategy keep the same traces."""
        with StrategyServer(probabilistic(0.3)) as server:
            remote = self.remote(server)
            sdk = TraceIdRatioBased(0.3)
            for trace_id in range(1, 2**64, 2**64 // 5000):
                ours = remote.should_sample(None, trace_id, "x").decision
                theirs = sdk.should_sample(None, trace_id, "x").decision
                self.assertIs(ours, theirs, trace_id)


class TestPerOperation(RemoteCase):

    def test_listed_operations_and_the_default(self) -> None:
        ops = {"POST /servers": 1.0, "GET /servers/detail": 0.001, "DELETE /servers": 0.3}
        with StrategyServer(per_operation(0.2, 0.0, 0.0, ops)) as server:
            remote = self.remote(server)
            tracer, exporter = self.traced(remote)
            for name, rate in list(ops.items()) + [("GET /flavors", 0.2)]:
                got = self.fraction(tracer, exporter, name)
                self.assertLessEqual(abs(got - rate), _tolerance(rate), f"{name}: {got}")
                report("jaeger remote", f"per operation {name} at {rate}", roots=N,
                       sampled=got)
            # the operator changes it between polls: now GET /servers/detail is traced
            self.switch(server, remote, per_operation(
                0.05, 0.0, 0.0, {"GET /servers/detail": 0.5, "POST /servers": 0.0}))
            for name, rate in (("GET /servers/detail", 0.5), ("POST /servers", 0.0),
                               ("GET /flavors", 0.05)):
                got = self.fraction(tracer, exporter, name)
                self.assertLessEqual(abs(got - rate), _tolerance(rate), f"{name}: {got}")

    def test_lower_bound_is_a_floor_per_operation(self) -> None:
        """An operation at probability 0 still gets its guaranteed traces per
        second (a token bucket per operation, starting with one credit)."""
        with StrategyServer(per_operation(0.0, 4.0, 0.0, {"POST /servers": 0.0})) as server:
            remote = self.remote(server)
            tracer, exporter = self.traced(remote)
            t0 = time.monotonic()
            counts = {"POST /servers": 0, "GET /images": 0}
            while time.monotonic() - t0 < 1.5:
                for name in counts:
                    exporter.clear()
                    tracer.start_span(name).end()
                    counts[name] += len(exporter.get_finished_spans())
            elapsed = time.monotonic() - t0
            for name, got in counts.items():  # burst of 4, then 4 per second
                self.assertGreaterEqual(got, 4 + int(4 * elapsed * 0.8), name)
                self.assertLessEqual(got, 4 + math.ceil(4 * elapsed) + 1, name)

    def test_upper_bound_caps_each_operation(self) -> None:
        with StrategyServer(per_operation(1.0, 0.0, 20.0, {"POST /servers": 1.0})) as server:
            remote = self.remote(server)
            tracer, exporter = self.traced(remote)
            t0 = time.monotonic()
            n = self.fraction(tracer, exporter, "POST /servers", n=5000) * 5000
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(n, 20)
            self.assertLessEqual(n, 20 + math.ceil(20 * elapsed) + 1)

    def test_wsgi_root_matches_method_and_path(self) -> None:
        """A WSGI SERVER span is named by its method until the router ran; its
        start attributes (http.request.method, url.path) select the listed
        operation ``METHOD path``."""
        ops = {"POST /v2.1/servers": 1.0, "GET /v2.1/servers/detail": 0.0}
        with StrategyServer(per_operation(0.0, 0.0, 0.0, ops)) as server:
            remote = self.remote(server)
            tracer, exporter = self.traced(remote)
            for (method, path), rate in (
                    (("POST", "/v2.1/servers"), 1.0), (("GET", "/v2.1/servers/detail"), 0.0),
                    (("GET", "/v2.1/flavors"), 0.0)):
                got = self.fraction(tracer, exporter, method, n=1000, attributes={
                    "http.request.method": method, "url.path": path})
                self.assertEqual(got, rate, f"{method} {path}")


class TestRateLimiting(RemoteCase):

    @pytest.mark.slow
    def test_eight_threads_share_one_bucket(self) -> None:
        """maxTracesPerSecond is for the process: 8 threads starting roots as
        fast as they can get the configured rate within 10% over 5 s."""
        per_second = 40.0
        with StrategyServer(rate_limiting(per_second)) as server:
            remote = self.remote(server)
            tracer, exporter = self.traced(remote)
            stop = threading.Event()
            started = [0] * 8

            def worker(i: int) -> None:
                while not stop.is_set():
                    tracer.start_span("GET /servers").end()
                    started[i] += 1

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            time.sleep(0.5)  # the initial burst is spent
            before, t0 = len(exporter.get_finished_spans()), time.monotonic()
            time.sleep(5.0)
            after, elapsed = len(exporter.get_finished_spans()), time.monotonic() - t0
            stop.set()
            for t in threads:
                t.join()
            rate = (after - before) / elapsed
            report("jaeger remote", "rate limiting 40/s, 8 threads, 5 s", roots=sum(started),
                   sampled_per_s=rate)
            self.assertLessEqual(abs(rate - per_second) / per_second, 0.10, rate)
            self.assertGreater(sum(started), 20 * after, "the threads did not contend")


class TestParentBased(RemoteCase):

    def test_parent_wins_and_signed_roots_are_kept(self) -> None:
        with StrategyServer(probabilistic(0.0)) as server:
            remote = self.remote(server)
            tracer, exporter = self.traced(remote)
            sampled_parent = trace.SpanContext(0xA1, 0xB1, is_remote=True,
                                               trace_flags=trace.TraceFlags(1))
            unsampled_parent = trace.SpanContext(0xA2, 0xB2, is_remote=True,
                                                 trace_flags=trace.TraceFlags(0))
            ctx = trace.set_span_in_context(trace.NonRecordingSpan(sampled_parent))
            for _ in range(100):
                tracer.start_span("child", context=ctx).end()
            self.assertEqual(len(exporter.get_finished_spans()), 100)
            self.assertEqual(self.fraction(tracer, exporter, "signed root", n=100,
                                           attributes={TRUST_ATTRIBUTE: "signed"}), 1.0)
            self.assertEqual(self.fraction(tracer, exporter, "plain root", n=100), 0.0)
            self.switch(server, remote, probabilistic(1.0))
            exporter.clear()
            ctx = trace.set_span_in_context(trace.NonRecordingSpan(unsampled_parent))
            for _ in range(100):
                tracer.start_span("child", context=ctx).end()
            self.assertEqual(len(exporter.get_finished_spans()), 0)


class TestFork(RemoteCase):

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
    def test_forked_worker_polls_on_its_own(self) -> None:
        with StrategyServer(probabilistic(0.25)) as server:
            remote = JaegerRemoteSampler(server.endpoint, "nova-api", TraceIdRatioBased(0),
                                         interval=30.0)
            self.addCleanup(remote.close)
            self.assertTrue(remote.wait_polls(1))
            before = server.count
            pid = os.fork()
            if pid == 0:  # the worker: its own poller, its own first poll
                ok = remote.wait_polls(1, timeout=10) and remote.polls >= 1
                os._exit(0 if ok and remote.spec is not None else 3)
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)
            self.assertGreater(server.count, before)
