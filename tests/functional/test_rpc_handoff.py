"""Work an endpoint hands off stays on the trace (threads, futurist, eventlet).

Without the ``threads`` hook the plain executors do not carry the
OpenTelemetry context (checked here, so a future stdlib/eventlet change that
fixes it shows up); ``handoff.wrap`` and ``handoff.ContextExecutor`` do, and
the hook does it with no change in the endpoint (a conductor handing its
driver call to a futurist pool).  The eventlet case runs in a subprocess with
monkey patching and oslo.messaging's eventlet executor.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
from typing import Any

import futurist
from opentelemetry import trace

from os_trace_plugins import _hooks
from os_trace_plugins.drivers import trace as traced
from os_trace_plugins.rpc import handoff
from os_trace_plugins.threads import ThreadsHook
from tests.functional.rpc_env import RPCTestCase

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _work() -> None:
    with trace.get_tracer("work").start_as_current_span("work"):
        pass


class Handing:
    """An endpoint handing work to the executor it was given."""

    def __init__(self, submit: Any) -> None:
        self.submit = submit

    def build(self, ctxt: Any) -> None:
        self.submit(_work).result(timeout=10)


class HandingTestCase(RPCTestCase):

    def run_with(self, submit: Any) -> Any:
        """An RPC call whose endpoint hands ``_work`` to ``submit``."""
        self.start_server([Handing(submit)])
        with self.tracer.start_as_current_span("api"):
            self.client().call({}, "build")
        return self.span("work"), self.span("build process")


class ThreadHandoffTest(HandingTestCase):

    def test_stdlib_executor_loses_the_trace_without_wrap(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            work, _ = self.run_with(pool.submit)
        self.assertIsNone(work.parent)

    def test_wrap_with_stdlib_executor(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            work, server = self.run_with(lambda fn: pool.submit(handoff.wrap(fn)))
        self.assertChildOf(work, server)

    def test_context_executor_over_futurist(self) -> None:
        pool = handoff.ContextExecutor(futurist.ThreadPoolExecutor(2))
        with pool:
            work, server = self.run_with(pool.submit)
        self.assertChildOf(work, server)

    def test_wrapped_worker_does_not_keep_the_context(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            self.run_with(lambda fn: pool.submit(handoff.wrap(fn)))
            after = pool.submit(lambda: trace.get_current_span().get_span_context()).result()
        self.assertFalse(after.is_valid)


class AutomaticHandoffTest(HandingTestCase):
    """The threads hook: a conductor's hand-off, unchanged, stays in the trace."""

    def setUp(self) -> None:
        super().setUp()
        hook = _hooks.shared(ThreadsHook)
        hook.instrument(self.conf, self.provider)
        self.addCleanup(hook.uninstrument)

    def test_driver_call_on_a_futurist_worker(self) -> None:
        @traced("driver")
        def power_on() -> str:
            return "on"

        pool = futurist.ThreadPoolExecutor(1)
        self.addCleanup(pool.shutdown)

        class Conductor:
            def change_power(self, ctxt: Any) -> str:
                return str(pool.submit(power_on).result(timeout=10))

        self.start_server([Conductor()])
        with self.tracer.start_as_current_span("api"):
            self.assertEqual(self.client().call({}, "change_power"), "on")
        self.assertChildOf(self.span("driver.power_on"), self.span("change_power process"))
        # the worker's next task, outside any request, is not in that trace
        self.assertFalse(pool.submit(
            lambda: trace.get_current_span().get_span_context().is_valid).result())

    def test_plain_executor_keeps_the_trace(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            work, server = self.run_with(pool.submit)
        self.assertChildOf(work, server)

    def test_wrap_and_the_hook_together(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            work, server = self.run_with(lambda fn: pool.submit(handoff.wrap(fn)))
        self.assertChildOf(work, server)


class EventletHandoffTest(RPCTestCase):

    def test_eventlet_executor_and_spawn(self) -> None:
        code = ("import eventlet; eventlet.monkey_patch();"
                "from tests.functional import test_rpc_handoff as m; m.eventlet_child()")
        proc = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=HERE,
                              env={**os.environ, "PYTHONPATH": HERE}, capture_output=True,
                              text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        spans = {s["name"]: s for s in map(json.loads, proc.stdout.splitlines())}
        server = spans["build process"]
        self.assertEqual(server["parent"], spans["build call"]["span_id"])
        self.assertEqual(spans["wrapped"]["parent"], server["span_id"])
        self.assertEqual(spans["wrapped"]["trace_id"], server["trace_id"])
        self.assertEqual(spans["helper"]["parent"], server["span_id"])
        self.assertIsNone(spans["plain"]["parent"], "eventlet now carries contexts: "
                          "update docs/rpc.md")


def eventlet_child() -> None:
    """Child process: eventlet executor, endpoint spawning greenthreads."""
    import eventlet
    import oslo_messaging as om
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from os_trace_plugins.rpc._hook import RPCHook
    from tests.base import make_conf
    from tests.functional.rpc_env import register_messaging_opts

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracer = provider.get_tracer("child")
    conf = make_conf()
    register_messaging_opts(conf)
    hook = RPCHook()
    hook.instrument(conf, provider)

    def named(name: str) -> Any:
        def fn() -> None:
            with tracer.start_as_current_span(name):
                pass
        return fn

    class Spawner:
        def build(self, ctxt: Any) -> None:
            eventlet.spawn(handoff.wrap(named("wrapped"))).wait()
            handoff.spawn(named("helper")).wait()
            eventlet.spawn(named("plain")).wait()

    transport = om.get_rpc_transport(conf, url="fake://")
    server = om.get_rpc_server(transport, om.Target(topic="ev", server="s"), [Spawner()],
                               executor="eventlet")
    server.start()
    try:
        with tracer.start_as_current_span("api"):
            om.get_rpc_client(transport, om.Target(topic="ev")).prepare(timeout=20).call(
                {}, "build")
    finally:
        server.stop()
        server.wait()
        hook.uninstrument()
    for s in exporter.get_finished_spans():
        print(json.dumps({"name": s.name, "trace_id": s.context.trace_id,
                          "span_id": s.context.span_id,
                          "parent": s.parent.span_id if s.parent else None}))
