"""Beside the peers: opentelemetry-instrumentation-oslo-service and -threading.

Both wrap ``Thread.start``/``run`` and pool ``submit`` methods too.  With a
peer instrumented before or after ours, a task must still be a child of its
submitter, a reused worker must still start clean (the peers give a pool's
worker thread the context of the submit that started it), and the looping
call rule must hold.  Child processes: the oslo.service peer selects a
backend when instrumented.
"""

from __future__ import annotations

import importlib.util
import unittest
from typing import Any

from tests.functional.test_threads_eventlet import check_ticks
from tests.functional.threads_env import ThreadsTestCase, emit, run_child

CHILD = "tests.functional.test_threads_peers"
HAVE_THREADING_PEER = importlib.util.find_spec(
    "opentelemetry.instrumentation.threading") is not None
HAVE_OSLO_SERVICE_PEER = importlib.util.find_spec(
    "opentelemetry.instrumentation.oslo_service") is not None


@unittest.skipUnless(HAVE_OSLO_SERVICE_PEER, "opentelemetry-instrumentation-oslo-service "
                     "comes with the bench extra, which the oldest-releases virtualenv "
                     "does not install")
class PeersTest(ThreadsTestCase):

    def check(self, peers: str, order: str) -> None:
        spans, result = run_child(f"{CHILD}:scenario",
                                  env={"PEERS": peers, "ORDER": order})
        request = spans["pools"]["span_id"]
        for name in ("std task", "futurist task", "thread"):
            self.assertEqual(spans[name]["parent"], request, f"{name} ({order})")
        self.assertEqual(result["std_after"], 0, "stdlib worker leaked the request")
        self.assertEqual(result["futurist_after"], 0, "futurist worker leaked the request")
        check_ticks(self, spans, result["loops"])

    def test_oslo_service_peer_first(self) -> None:
        self.check("oslo_service", "peer-first")

    def test_oslo_service_peer_last(self) -> None:
        self.check("oslo_service", "ours-first")

    @unittest.skipUnless(HAVE_THREADING_PEER, "opentelemetry-instrumentation-threading "
                         "not installed (its pins conflict with the bench extra's)")
    def test_both_peers(self) -> None:
        self.check("oslo_service,threading", "peer-first")
        self.check("oslo_service,threading", "ours-first")


def _peers() -> list[Any]:
    import os

    found = []
    for name in os.environ["PEERS"].split(","):
        if name == "oslo_service":
            from opentelemetry.instrumentation.oslo_service import OsloServiceInstrumentor
            found.append(OsloServiceInstrumentor())
        elif name == "threading":
            from opentelemetry.instrumentation.threading import ThreadingInstrumentor
            found.append(ThreadingInstrumentor())
    return found


def scenario(provider: Any) -> None:
    import concurrent.futures
    import os
    import threading
    import time

    from oslo_service import backend

    backend.init_backend(backend.BackendType.THREADING)
    import futurist

    from tests.functional.test_threads_eventlet import _instrument, run_loops
    from tests.functional.threads_env import current_span_id

    peers = _peers()
    if os.environ["ORDER"] == "peer-first":
        for peer in peers:
            peer.instrument(tracer_provider=provider)
        tracer = _instrument(provider)
    else:
        tracer = _instrument(provider)
        for peer in peers:
            peer.instrument(tracer_provider=provider)

    def work(name: str) -> Any:
        def fn() -> None:
            with tracer.start_as_current_span(name):
                pass
        return fn

    std = concurrent.futures.ThreadPoolExecutor(1)
    fut = futurist.ThreadPoolExecutor(1)
    with tracer.start_as_current_span("pools"):
        std.submit(work("std task")).result()
        fut.submit(work("futurist task")).result()
        t = threading.Thread(target=work("thread"))
        t.start()
        t.join()
    result = {"std_after": std.submit(current_span_id).result(),
              "futurist_after": fut.submit(current_span_id).result()}
    std.shutdown()
    fut.shutdown()
    result["loops"] = run_loops(provider, time.sleep)
    emit(result)
