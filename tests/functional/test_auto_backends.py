"""Zero-code activation on oslo.service's threading and eventlet backends.

The program selects its backend first, then imports oslo.messaging, as nova
and friends do; started under ``opentelemetry-instrument`` it must not die
with ``BackendAlreadySelected`` and its RPC call must be traced into the
embedded store named by its ``[profiler]`` section.
"""

from __future__ import annotations

import json
import os
import sys

from tests.auto_env import otel_env, run_instrumented, stored_spans
from tests.functional.test_auto_activation import AutoCase

SERVICE = os.path.join(os.path.dirname(__file__), "auto_rpc_service.py")


class TestBackends(AutoCase):
    def serve(self, backend: str) -> None:
        argv = [sys.executable, SERVICE, "--config-file", self.conf()]
        env = otel_env(backend=backend.lower(), AUTO_BACKEND=backend)
        proc = run_instrumented(argv, env)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        self.assertEqual(out, {"answer": 2, "backend": backend})
        spans = stored_spans(self.store)
        names = {s["name"] for s in spans}
        self.assertIn("request", names)
        rpc = [s for s in spans if s["name"].startswith("ping")]
        self.assertEqual(sorted(s["kind"] for s in rpc), ["CLIENT", "SERVER"], names)
        self.assertEqual(len({s["trace_id"] for s in spans}), 1)
        self.assertNoError(proc.stderr)

    def test_threading_backend(self) -> None:
        self.serve("THREADING")

    def test_eventlet_backend(self) -> None:
        self.serve("EVENTLET")
