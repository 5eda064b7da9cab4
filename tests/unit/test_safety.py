"""The guard: never raise, log once, rate-limit bad input."""

from __future__ import annotations

import logging
import unittest

from os_trace_plugins import _safety


class TestSafety(unittest.TestCase):
    def setUp(self) -> None:
        _safety.reset()

    def test_safe_call_returns_default_and_logs_once(self) -> None:
        def broken() -> str:
            raise RuntimeError("boom")

        with self.assertLogs("os_trace_plugins", logging.DEBUG) as logs:
            self.assertEqual(_safety.safe_call("test.place", broken, default="fallback"),
                             "fallback")
            self.assertEqual(_safety.safe_call("test.place", broken, default="fallback"),
                             "fallback")
        errors = [r for r in logs.records if r.levelno >= logging.ERROR]
        self.assertEqual(len(errors), 1)
        self.assertIn("test.place", errors[0].getMessage())

    def test_safe_call_passes_through_results(self) -> None:
        self.assertEqual(_safety.safe_call("x", lambda a, b=0: a + b, 1, b=2), 3)
        self.assertIsNone(_safety.safe_call("x", lambda: 1 / 0))

    def test_rate_limited_log(self) -> None:
        log = logging.getLogger("os_trace_plugins.test")
        limited = _safety.RateLimitedLog(log, interval=3600)
        with self.assertLogs(log, logging.WARNING) as logs:
            self.assertTrue(limited.warning("k", "bad header %s", "x"))
            for _ in range(5):
                self.assertFalse(limited.warning("k", "bad header %s", "x"))
            self.assertTrue(limited.warning("other", "other problem"))
        self.assertEqual(len(logs.records), 2)
        limited._interval = 0
        with self.assertLogs(log, logging.WARNING) as logs:
            limited.warning("k", "bad header %s", "y")
        self.assertIn("5 similar messages suppressed", logs.records[0].getMessage())
