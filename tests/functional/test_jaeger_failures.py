"""A strategy endpoint that fails: the service samples at the fallback, logs once
per failure streak, and the request path never waits on the poll.

Each failure mode is real: a port where nothing listens (refused), a server
holding the request open (hang, past the poller's timeout), HTTP 500, a body
that is not JSON, a strategy type Jaeger does not define.
"""

from __future__ import annotations

import logging
import time

from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from os_trace_plugins.export._jaeger_remote import JaegerRemoteSampler
from tests.figures import report
from tests.functional.test_jaeger_sampling import RemoteCase, _tolerance
from tests.strategy_server import StrategyServer, probabilistic, refusing_endpoint

FALLBACK = 0.25
N = 10_000


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


class TestFailures(RemoteCase):
    interval = 0.05

    def setUp(self) -> None:
        super().setUp()
        self.log = _Warnings()
        logger = logging.getLogger("os_trace_plugins")
        logger.addHandler(self.log)
        self.addCleanup(logger.removeHandler, self.log)
        self.addCleanup(logger.setLevel, logger.level)
        logger.setLevel(logging.DEBUG)

    def _slowest_decision(self, remote: JaegerRemoteSampler, seconds: float) -> float:
        """The longest should_sample call (s) while the poller keeps polling."""
        worst, deadline, trace_id = 0.0, time.monotonic() + seconds, 1
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            remote.should_sample(None, trace_id, "GET /servers")
            worst = max(worst, time.perf_counter() - t0)
            trace_id += 0x9E3779B97F4A7C15
        return worst

    def _check_fallback(self, remote: JaegerRemoteSampler, mode: str, polls: int = 4) -> None:
        """Fallback rate, one WARNING for the streak, and no decision that
        waited: one that waited on a poll would take the poll's timeout (0.5 s
        for the hang), far above scheduling noise on a loaded machine."""
        self.assertTrue(remote.wait_polls(polls, timeout=15), f"{mode}: the poller stopped")
        self.assertIsNone(remote.spec, mode)
        tracer, exporter = self.traced(remote)
        got = self.fraction(tracer, exporter, "GET /servers")
        self.assertLessEqual(abs(got - FALLBACK), _tolerance(FALLBACK), f"{mode}: {got}")
        worst = self._slowest_decision(remote, 0.6)
        warnings = self.log.at(logging.WARNING)
        report("jaeger remote failures", mode, polls=remote.polls, sampled=got,
               warnings=len(warnings), slowest_decision_ms=worst * 1000)
        self.assertEqual(len(warnings), 1, f"{mode}: {warnings}")
        self.assertIn("fallback TraceIdRatioBased{0.25}", warnings[0])
        self.assertLess(worst, 0.2, f"{mode}: a decision waited {worst:.3f} s")

    def _remote_on(self, endpoint: str, timeout: float | None = None) -> JaegerRemoteSampler:
        remote = JaegerRemoteSampler(endpoint, "cinder-api", TraceIdRatioBased(FALLBACK),
                                     self.interval, timeout=timeout)
        self.addCleanup(remote.close)
        return remote

    def test_refused(self) -> None:
        self._check_fallback(self._remote_on(refusing_endpoint()), "refused")

    def test_http_500(self) -> None:
        with StrategyServer() as server:
            server.status(500)
            self._check_fallback(self._remote_on(server.endpoint), "HTTP 500")

    def test_malformed_json(self) -> None:
        with StrategyServer('{"strategyType": "PROBABILISTIC", "probabilisticSam') as server:
            self._check_fallback(self._remote_on(server.endpoint), "malformed JSON")

    def test_unknown_strategy_type(self) -> None:
        body = '{"strategyType": "ADAPTIVE_MAGIC", "probabilisticSampling": {"samplingRate": 1}}'
        with StrategyServer(body) as server:
            self._check_fallback(self._remote_on(server.endpoint), "unknown strategy type")
        body = '{"strategyType": 7, "probabilisticSampling": {"samplingRate": 1}}'
        self.log.records.clear()
        with StrategyServer(body) as server:
            self._check_fallback(self._remote_on(server.endpoint), "unknown type number")

    def test_hang(self) -> None:
        with StrategyServer() as server:
            server.hang()
            remote = self._remote_on(server.endpoint, timeout=0.5)
            self._check_fallback(remote, "hang", polls=2)
            self.assertIn("timeout", self.log.at(logging.WARNING)[0])

    def test_streaks_keep_the_previous_strategy(self) -> None:
        """Good, failing, good again, failing again: the last strategy stays in
        force through a failure; one WARNING per streak, one INFO on recovery."""
        with StrategyServer(probabilistic(0.75)) as server:
            remote = self._remote_on(server.endpoint)
            self.assertTrue(remote.wait_polls(1))
            tracer, exporter = self.traced(remote)
            for streak in (1, 2):
                server.status(500)
                self.assertTrue(remote.wait_polls(remote.polls + 4))
                self.assertEqual(len(self.log.at(logging.WARNING)), streak)
                self.assertIn("keeping probabilistic 0.75", self.log.at(logging.WARNING)[-1])
                got = self.fraction(tracer, exporter, "GET /volumes")
                self.assertLessEqual(abs(got - 0.75), _tolerance(0.75), got)
                server.set(probabilistic(0.75))
                self.assertTrue(remote.wait_polls(remote.polls + 2))
            infos = [m for m in self.log.at(logging.INFO) if "answers again" in m]
            self.assertEqual(len(infos), 2, infos)
