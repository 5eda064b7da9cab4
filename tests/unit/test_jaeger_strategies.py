"""Jaeger strategy parsing, the token bucket and OTEL_TRACES_SAMPLER_ARG.

The bodies are Jaeger's documented JSON, written out here; the expected specs
follow the protocol's rules (docs/sampling.md), not the parser's code.
"""

from __future__ import annotations

import unittest

from os_trace_plugins.export import _jaeger_strategies as js
from os_trace_plugins.export._jaeger_remote import DEFAULT_ENDPOINT, check_endpoint
from os_trace_plugins.export._sampler_arg import parse_sampler_arg
from os_trace_plugins.export._token_bucket import TokenBucket


class TestParse(unittest.TestCase):

    def test_documented_shapes(self) -> None:
        self.assertEqual(js.parse('{"strategyType": "PROBABILISTIC", '
                                  '"probabilisticSampling": {"samplingRate": 0.5}}'),
                         js.Probabilistic(0.5))
        self.assertEqual(js.parse('{"strategyType": "RATE_LIMITING", '
                                  '"rateLimitingSampling": {"maxTracesPerSecond": 10}}'),
                         js.RateLimiting(10.0))
        body = ('{"strategyType": "PROBABILISTIC", "probabilisticSampling": '
                '{"samplingRate": 0.5}, "operationSampling": {'
                '"defaultSamplingProbability": 0.001, "defaultLowerBoundTracesPerSecond": 0.1,'
                '"defaultUpperBoundTracesPerSecond": 100, "perOperationStrategies": ['
                '{"operation": "POST /servers", "probabilisticSampling": '
                '{"samplingRate": 1.0}}]}}')
        self.assertEqual(js.parse(body), js.PerOperation(
            0.001, 0.1, 100.0, (("POST /servers", 1.0),)))

    def test_thrift_integers_and_proto3_omissions(self) -> None:
        self.assertEqual(js.parse('{"strategyType": 1, "rateLimitingSampling": '
                                  '{"maxTracesPerSecond": 2}}'), js.RateLimiting(2.0))
        self.assertEqual(js.parse('{"strategyType": 0, "probabilisticSampling": '
                                  '{"samplingRate": 0.2}}'), js.Probabilistic(0.2))
        # proto3 JSON leaves zero values out: PROBABILISTIC (0), a rate of 0
        self.assertEqual(js.parse('{"probabilisticSampling": {}}'), js.Probabilistic(0.0))
        self.assertEqual(js.parse('{"rateLimitingSampling": {"maxTracesPerSecond": 3}}'),
                         js.RateLimiting(3.0))
        self.assertEqual(js.parse('{"strategy_type": "PROBABILISTIC", '
                                  '"probabilistic_sampling": {"sampling_rate": 0.4}}'),
                         js.Probabilistic(0.4))

    def test_unknown_fields_ignored_rates_clamped(self) -> None:
        self.assertEqual(js.parse('{"strategyType": "PROBABILISTIC", "extra": [1], '
                                  '"probabilisticSampling": {"samplingRate": 1.5, "x": 1}}'),
                         js.Probabilistic(1.0))

    def test_failures(self) -> None:
        for body in ('{"strategyType": "ADAPTIVE"}', '{"strategyType": 2}', "[]", "{",
                     '{"strategyType": true, "probabilisticSampling": {}}',
                     '{"strategyType": "PROBABILISTIC"}',
                     '{"strategyType": "RATE_LIMITING"}',
                     '{"probabilisticSampling": {"samplingRate": "high"}}',
                     '{"operationSampling": {"perOperationStrategies": [{"x": 1}]}}',
                     '{"operationSampling": []}', b"\xff\xfe"):
            with self.subTest(body=body), self.assertRaises(js.StrategyError):
                js.parse(body)


class TestDeciders(unittest.TestCase):

    def test_operations_tracked_are_capped(self) -> None:
        decider = js.build(js.PerOperation(0.0, 1.0, 0.0, (("listed", 0.0),)))
        assert isinstance(decider, js._PerOperation)
        for i in range(js.MAX_OPERATIONS * 2):
            decider.sampled(1 << 63, f"hostile-{i}", None)
        self.assertEqual(decider.tracked, js.MAX_OPERATIONS + 1)
        # beyond the cap: the default probability, no floor
        self.assertFalse(decider.sampled(1 << 63, "one-more", None))
        self.assertTrue(decider.sampled(1 << 63, "listed", None))  # its own floor credit

    def test_probabilistic_is_the_sdk_bound(self) -> None:
        decider = js.build(js.Probabilistic(0.5))
        self.assertTrue(decider.sampled((1 << 63) - 1, "x", None))
        self.assertFalse(decider.sampled(1 << 63, "x", None))


class TestTokenBucket(unittest.TestCase):

    def test_burst_then_rate(self) -> None:
        now = [100.0]
        bucket = TokenBucket(2.0, 2.0, clock=lambda: now[0])
        self.assertEqual([bucket.take() for _ in range(3)], [True, True, False])
        now[0] += 0.5
        self.assertEqual([bucket.take() for _ in range(2)], [True, False])
        now[0] += 100.0  # credits never exceed the burst
        self.assertEqual(sum(bucket.take() for _ in range(5)), 2)

    def test_fractional_rate(self) -> None:
        now = [0.0]
        bucket = TokenBucket(0.1, 1.0, clock=lambda: now[0])
        self.assertTrue(bucket.take())
        now[0] += 9.0
        self.assertFalse(bucket.take())
        now[0] += 1.01
        self.assertTrue(bucket.take())


class TestSamplerArg(unittest.TestCase):

    def test_java_keys(self) -> None:
        args = parse_sampler_arg("endpoint=http://agent:5778/sampling,pollingIntervalMs=5000,"
                                 "initialSamplingRate=0.25")
        self.assertEqual((args.endpoint, args.interval, args.initial_rate),
                         ("http://agent:5778/sampling", 5.0, 0.25))
        self.assertEqual(parse_sampler_arg("").endpoint, DEFAULT_ENDPOINT)

    def test_bad_values_fall_back_to_defaults(self) -> None:
        with self.assertLogs("os_trace_plugins", "WARNING") as logs:
            args = parse_sampler_arg("endpoint=localhost:14250,pollingIntervalMs=-1,"
                                     "initialSamplingRate=2,colour=blue,junk")
        self.assertEqual((args.endpoint, args.interval, args.initial_rate),
                         (DEFAULT_ENDPOINT, 60.0, 0.001))
        self.assertEqual(len(logs.records), 5)

    def test_endpoint_check(self) -> None:
        self.assertEqual(check_endpoint("https://c:14268/api/sampling"),
                         "https://c:14268/api/sampling")
        for bad in ("", "localhost:5778", "grpc://c:14250", "http:///x"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                check_endpoint(bad)
