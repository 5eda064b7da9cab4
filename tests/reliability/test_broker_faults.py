"""Issue 14, part 2: the broker drops every connection, then stops and starts.

A private RabbitMQ node (tests/reliability/rabbit_node.py; never the shared
one) carries RPC calls between a caller and a server that have a transport
each, as two services would.  Two sender threads call continuously, each call
under a root span of its own, while the test hurts the broker:

1. ``rabbitmqctl close_all_connections`` (server-side close of every
   connection: caller's send pool, its reply listener, the RPC server's
   listener), twice;
2. ``rabbitmqctl stop_app``, two seconds down (every queue of the node goes,
   the server's and the reply queues too), ``start_app``.

After each fault the test waits until calls *started after it* succeed again
(oslo.messaging reconnects and re-declares its queues).  Then, from the
finished spans: every call that succeeded has a complete trace (root ->
CLIENT ``echo call`` -> SERVER ``echo process``, one trace id, and the endpoint
ran with that server span current); every call that failed has its CLIENT
span ended with the error recorded; no span has a parent in another trace;
and every span started was ended (a processor counting ``on_start`` /
``on_end``).  The figures are printed at the end of the run
(docs/reliability.md, "2. Broker faults").
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import oslo_messaging as om
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from oslo_messaging import opts as om_opts

from tests.figures import report
from tests.functional.rpc_env import RPCTestCase
from tests.reliability.rabbit_node import PrivateRabbit, start_private_rabbit
from tests.reliability.spans import Counting, foreign_parents

#: a call waits this long for its reply (a call caught by a fault times out)
CALL_TIMEOUT = 5
#: successful calls, started after a fault, that prove the reconnect
AFTER_EACH_FAULT = 150
SENDERS = 2
PHASE_DEADLINE = 90.0


class Echo:
    def echo(self, ctxt: Any, n: int) -> list[int]:
        sc = trace.get_current_span().get_span_context()
        return [n, sc.trace_id, sc.span_id]


class Calls:
    """What the sender threads did: one entry per call, and the phase it began in."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.phase = "steady"
        self.entries: list[dict[str, Any]] = []
        self.stop = threading.Event()

    def ok_in(self, phase: str) -> int:
        with self.lock:
            return sum(1 for e in self.entries if e["phase"] == phase and e["ok"])

    def wait_ok(self, phase: str, count: int, node: PrivateRabbit) -> None:
        deadline = time.monotonic() + PHASE_DEADLINE
        while self.ok_in(phase) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"only {self.ok_in(phase)} calls succeeded after {phase!r} in "
                    f"{PHASE_DEADLINE:.0f} s: oslo.messaging did not reconnect\n"
                    f"{node.log_tail()}")
            time.sleep(0.05)


@pytest.mark.slow
class BrokerFaultsTest(RPCTestCase):
    node: PrivateRabbit

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.node = start_private_rabbit()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.node.stop()
        super().tearDownClass()

    def setUp(self) -> None:
        self.url = self.node.url
        super().setUp()
        self.counting = Counting()
        self.provider.add_span_processor(self.counting)
        for group, group_opts in om_opts.list_opts():
            if group == "oslo_messaging_rabbit":
                self.conf.register_opts(group_opts, group=group)
        # reconnect back-off capped at 2 s (default 30) keeps the test short
        self.conf.set_override("rabbit_interval_max", 2, group="oslo_messaging_rabbit")
        self.server_transport = self._transport()
        self.client_transport = self._transport()
        self.topic = f"os-trace-fault-{uuid.uuid4().hex[:8]}"

    def _transport(self) -> Any:
        transport = om.get_rpc_transport(self.conf, url=self.node.url)
        self.addCleanup(transport.cleanup)
        return transport

    def _sender(self, calls: Calls, client: Any, me: int) -> None:
        tracer = self.tracer
        n = 0
        while not calls.stop.is_set():
            n += 1
            with calls.lock:
                phase = calls.phase
            entry: dict[str, Any] = {"phase": phase, "ok": False, "n": (me, n)}
            with tracer.start_as_current_span(f"request {me}-{n}") as root:
                entry["root"] = root.get_span_context().span_id
                entry["trace"] = root.get_span_context().trace_id
                try:
                    entry["reply"] = client.call({"request_id": f"req-{me}-{n}"}, "echo",
                                                 n=n)
                    entry["ok"] = True
                except Exception as exc:  # a fault: recorded, the sender goes on
                    entry["error"] = type(exc).__name__
                    entry["t"] = time.monotonic()
            with calls.lock:
                calls.entries.append(entry)

    def test_calls_after_reconnect_are_traced_and_parented(self) -> None:
        srv = om.get_rpc_server(self.server_transport,
                                om.Target(topic=self.topic, server="s1"), [Echo()],
                                executor="threading")
        srv.start()
        self.addCleanup(self._stop, srv)
        client = om.get_rpc_client(self.client_transport,
                                   om.Target(topic=self.topic, server="s1"),
                                   timeout=CALL_TIMEOUT)
        calls = Calls()
        senders = [threading.Thread(target=self._sender, args=(calls, client, i), daemon=True)
                   for i in range(SENDERS)]
        for t in senders:
            t.start()
        started = time.monotonic()
        replaced = 0
        recovery: dict[str, float] = {}
        try:
            calls.wait_ok("steady", AFTER_EACH_FAULT, self.node)
            node = self.node
            for phase, fault in (
                    ("close 1", node.close_all_connections),
                    ("close 2", node.close_all_connections),
                    ("stop/start app", node.restart_app),
                    # down longer than a call's timeout: calls in flight fail
                    ("long outage", lambda: node.restart_app(CALL_TIMEOUT + 3))):
                before = node.peer_ports()
                with calls.lock:
                    calls.phase = phase
                t0 = time.monotonic()
                fault()
                calls.wait_ok(phase, AFTER_EACH_FAULT, node)
                recovery[phase] = round(time.monotonic() - t0, 1)
                # the calls counted above went over new connections only
                after = self.open_after(before)
                self.assertTrue(before and after and not before & after,
                                f"{phase}: connections not replaced {before} -> {after}")
                replaced += len(before)
        finally:
            calls.stop.set()
            for t in senders:
                t.join(CALL_TIMEOUT * 3)
        elapsed = time.monotonic() - started
        self.assertFalse(any(t.is_alive() for t in senders), "a sender is stuck")
        self._stop(srv)  # every dispatch has returned: its span has ended
        print("seconds from each fault to its successes:", recovery)
        self.check(calls.entries, elapsed, replaced)

    def open_after(self, before: set[int]) -> set[int]:
        """The node's open connections once none of ``before`` is among them
        (a listing can miss connections still being set up: polled)."""
        deadline = time.monotonic() + 10
        while True:
            after = self.node.peer_ports()
            if (after and not before & after) or time.monotonic() > deadline:
                return after
            time.sleep(0.5)

    def check(self, entries: list[dict[str, Any]], elapsed: float, replaced: int) -> None:
        spans = self.spans()
        clients = {s.parent.span_id: s for s in spans
                   if s.kind == SpanKind.CLIENT and s.parent is not None}
        servers: dict[int, list[Any]] = {}
        for s in spans:
            if s.kind == SpanKind.SERVER:
                servers.setdefault(s.parent.span_id if s.parent else 0, []).append(s)
        incomplete, failed_unrecorded = [], []
        for e in entries:
            client = clients.get(e["root"])
            if client is None or client.context.trace_id != e["trace"]:
                incomplete.append((e["n"], "no CLIENT span under its root"))
                continue
            if not e["ok"]:
                if (client.status.status_code != StatusCode.ERROR
                        or not str(client.attributes.get("error.type")).endswith(
                            "." + e["error"])):
                    failed_unrecorded.append((e["n"], e["error"], client.status.status_code.name,
                                              dict(client.attributes or {}),
                                              [ev.name for ev in client.events]))
                continue
            mine = servers.get(client.context.span_id, [])
            n, trace_id, span_id = e["reply"]
            if (len(mine) != 1 or mine[0].context.trace_id != e["trace"]
                    or trace_id != e["trace"] or span_id != mine[0].context.span_id):
                incomplete.append((e["n"], [s.context for s in mine], e["reply"]))
        orphans = [s.name for p, group in servers.items() for s in group
                   if p not in {c.context.span_id for c in clients.values()}]
        foreign = foreign_parents(spans)
        unended = self.counting.unended()
        ok = [e for e in entries if e["ok"]]
        after = [e for e in ok if e["phase"] != "steady"]
        errors: dict[str, int] = {}
        for e in entries:
            if not e["ok"]:
                errors[e["error"]] = errors.get(e["error"], 0) + 1
        report("2 broker faults", "close_all_connections x2, stop_app/start_app (2 s, 8 s)",
               calls=len(entries), succeeded=len(ok), failed=len(entries) - len(ok),
               succeeded_after_faults=len(after), connections_replaced=replaced,
               errors=" ".join(f"{k}={v}" for k, v in sorted(errors.items())) or "none",
               complete_traces=len(ok) - len([i for i in incomplete if i[0] in
                                               {e["n"] for e in ok}]),
               spans_started=len(self.counting.started), spans_ended=len(self.counting.ended),
               spans_unended=len(unended), foreign_parents=len(foreign),
               seconds=round(elapsed, 1))
        self.assertEqual(incomplete, [], "calls without a complete, parented trace")
        self.assertEqual(failed_unrecorded, [], "failed calls without their error")
        self.assertEqual(orphans, [], "SERVER spans without their CLIENT span")
        self.assertEqual(foreign, [])
        self.assertEqual(unended, {}, "spans started and never ended")
        self.assertEqual(len(spans), len(self.counting.started))
        # every phase after a fault had its successes (wait_ok) and they are traced
        self.assertGreaterEqual(len(after), 4 * AFTER_EACH_FAULT)
