"""How the RPC hooks are installed: post-import, instrumentors, contrib beside ours,
the SQL flag signal and the server's destination."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import oslo_messaging as om
import pytest
from oslo_messaging.notify import dispatcher as notify_dispatcher
from oslo_messaging.rpc import dispatcher as rpc_dispatcher
from oslo_messaging.transport import Transport

from os_trace_plugins import _flagged, _hooks
from os_trace_plugins.rpc._hook import RPCInstrumentor
from tests.functional.rpc_env import Recorder, RPCTestCase

ORIGINAL_SEND = Transport.__dict__["_send"]
ORIGINALS = [(owner, name, owner.__dict__[name]) for owner, name in (
    (Transport, "_send"), (Transport, "_send_notification"),
    (rpc_dispatcher.RPCDispatcher, "dispatch"),
    (notify_dispatcher.NotificationDispatcher, "dispatch"))]

# instrument first, import the library after: what opentelemetry-instrument does
POST_IMPORT = textwrap.dedent('''
    import json, sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    from os_trace_plugins.rpc._hook import RPCHook, RPCInstrumentor
    from os_trace_plugins.rpc._notify_hook import NotificationHook
    from os_trace_plugins._hooks import shared
    if sys.argv[1] == "instrumentor":
        RPCInstrumentor().instrument(tracer_provider=provider)
    else:
        shared(RPCHook).instrument(None, provider)
    shared(NotificationHook).instrument(None, provider)
    before = sorted(m for m in ("oslo_messaging", "oslo_service", "eventlet")
                    if m in sys.modules)
    import oslo_messaging as om
    from oslo_config import cfg
    cfg.CONF([])
    transport = om.get_rpc_transport(cfg.CONF, "fake:///")
    class Endpoint:
        def ping(self, ctxt, x):
            return x + 1
    server = om.get_rpc_server(transport, om.Target(topic="t", server="s"), [Endpoint()],
                               executor="threading")
    server.start()
    assert om.get_rpc_client(transport, om.Target(topic="t")).call({}, "ping", x=1) == 2
    server.stop(); server.wait()
    spans = [(s.name, s.parent.span_id if s.parent else None, s.context.span_id,
              dict(s.attributes)) for s in exporter.get_finished_spans()]
    print(json.dumps({"before": before, "spans": spans}))
''')


class PostImportTest(RPCTestCase):

    def test_nothing_imported_until_the_service_imports_it(self) -> None:
        for how in ("hook", "instrumentor"):
            with self.subTest(how=how):
                proc = subprocess.run([sys.executable, "-c", POST_IMPORT, how],
                                      capture_output=True, text=True, timeout=120)
                self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
                out = json.loads(proc.stdout.strip().splitlines()[-1])
                self.assertEqual(out["before"], [])
                spans = {name: (parent, sid, attrs)
                         for name, parent, sid, attrs in out["spans"]}
                self.assertEqual(set(spans), {"ping call", "ping process"})
                self.assertEqual(spans["ping process"][0], spans["ping call"][1])
                self.assertEqual(spans["ping process"][2]["messaging.destination.name"], "t")


class InstrumentorTest(RPCTestCase):

    def setUp(self) -> None:
        super().setUp()
        self.rpc_hook.uninstrument()

    @staticmethod
    def restore_originals() -> None:
        # contrib's unwrap puts back what it wrapped: our inert wrapper, which
        # would stay for the life of the process; start the next test clean
        for owner, name, fn in ORIGINALS:
            setattr(owner, name, fn)

    def test_instrumentor_symmetric_across_instances(self) -> None:
        RPCInstrumentor().instrument(tracer_provider=self.provider)
        self.assertIsNot(Transport.__dict__["_send"], ORIGINAL_SEND)
        self.start_server([Recorder()])
        self.client().call({}, "echo")
        self.assertEqual(len(self.spans()), 2)
        RPCInstrumentor().uninstrument()
        self.assertIs(Transport.__dict__["_send"], ORIGINAL_SEND)

    def test_instrumentor_and_setup_give_one_span_per_call(self) -> None:
        inst = RPCInstrumentor()
        inst.instrument(tracer_provider=self.provider)
        self.addCleanup(inst.uninstrument)
        _hooks.load_hooks(self.conf, self.provider)
        self.assertIs(_hooks.loaded_hooks()["rpc"], inst.hook)
        self.start_server([Recorder()])
        with self.tracer.start_as_current_span("api"):
            self.client().call({}, "echo")
        self.assertEqual(sorted(s.name for s in self.spans()),
                         ["api", "echo call", "echo process"])

    def test_contrib_on_top_keeps_working_after_ours_goes(self) -> None:
        self.rpc_hook.instrument(self.conf, self.provider)
        module = pytest.importorskip(
            "opentelemetry.instrumentation.oslo_messaging",
            reason="contrib 0.13 comes with the bench extra, which the oldest-releases "
                   "virtualenv does not install")
        contrib = module.OsloMessagingInstrumentor()
        contrib.instrument(tracer_provider=self.provider)
        self.addCleanup(self.restore_originals)
        self.addCleanup(contrib.uninstrument)
        self.start_server([Recorder()])
        client = self.client()
        client.call({}, "echo")
        scopes = {s.instrumentation_scope.name for s in self.spans()}
        self.assertIn("os_trace_plugins.rpc", scopes)
        self.rpc_hook.uninstrument()
        self.exporter.clear()
        self.assertEqual(client.call({}, "echo", value=4), 4)
        spans = self.spans()
        self.assertEqual({s.instrumentation_scope.name for s in spans},
                         {"opentelemetry.instrumentation.oslo_messaging.instrument"})
        self.assertEqual(len(spans), 2)


class FlaggedTest(RPCTestCase):
    """The SQL hook learns when a flagged request runs here (``_flagged``)."""

    def setUp(self) -> None:
        super().setUp()
        _flagged.reset()
        self.changes: list[bool] = []
        _flagged.subscribe(self.changes.append)
        self.addCleanup(_flagged.unsubscribe, self.changes.append)

    def probe(self) -> tuple[Any, list[tuple[int, bool]]]:
        seen: list[tuple[int, bool]] = []
        from opentelemetry import context

        class Probe:
            def look(self, ctxt: Any, **kw: Any) -> None:
                seen.append((_flagged.running(), _flagged.is_flagged(context.get_current())))

            def info(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any,
                     metadata: Any) -> None:
                self.look(ctxt)

        return Probe, seen

    @staticmethod
    def batch_probe(seen: list[tuple[int, bool]]) -> Any:
        from opentelemetry import context

        class BatchProbe:
            def info(self, messages: list[Any]) -> None:
                seen.append((_flagged.running(), _flagged.is_flagged(context.get_current())))

        return BatchProbe()

    def test_rpc_flagged_request_signalled(self) -> None:
        probe, seen = self.probe()
        self.start_server([probe()])
        client = self.client()
        client.call({}, "look")
        token = self.with_baggage(_flagged.SQL_BAGGAGE_KEY, "1")
        try:
            client.call({}, "look")
        finally:
            from opentelemetry import context
            context.detach(token)  # type: ignore[arg-type]
        self.assertEqual(seen, [(0, False), (1, True)])
        self.assertEqual(self.changes, [True, False])
        self.assertEqual(_flagged.running(), 0)

    def test_notification_and_batch_flagged(self) -> None:
        import time
        probe, seen = self.probe()
        self.start_listener([probe()])
        self.start_listener([self.batch_probe(seen)], topic=self.topic + "-batch", batch=1)
        token = self.with_baggage(_flagged.SQL_BAGGAGE_KEY, "1")
        try:
            for topic in (self.topic, self.topic + "-batch"):
                om.Notifier(self.transport, publisher_id="p", driver="messaging",
                            topics=[topic]).info({}, "a.b", {})
        finally:
            from opentelemetry import context
            context.detach(token)  # type: ignore[arg-type]
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(sorted(seen), [(1, True), (1, True)])
        self.assertEqual(_flagged.running(), 0)


class DestinationTest(RPCTestCase):

    def test_server_span_names_the_topic(self) -> None:
        self.start_server([Recorder()])
        self.client().call({}, "echo")
        server = self.span("echo process")
        self.assertEqual(server.attributes["messaging.destination.name"], self.topic)
        self.assertEqual(self.span("echo call").attributes["messaging.destination.name"],
                         self.topic)



