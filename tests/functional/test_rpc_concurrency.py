"""16 threads x 50 calls: every server span under its own caller's span."""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from tests.functional.rpc_env import RPCTestCase

THREADS, CALLS = 16, 50


class Where:
    def where(self, ctxt: Any, tag: str) -> list[Any]:
        sc = trace.get_current_span().get_span_context()
        return [tag, sc.trace_id, sc.span_id]


class ConcurrencyTest(RPCTestCase):

    def test_parallel_callers_never_mix(self) -> None:
        self.start_server([Where()])
        client = self.client()
        roots: dict[int, int] = {}
        replies: list[list[Any]] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def caller(i: int) -> None:
            try:
                with self.tracer.start_as_current_span(f"caller-{i}") as root:
                    with lock:
                        roots[i] = root.get_span_context().trace_id
                    for n in range(CALLS):
                        reply = client.call({}, "where", tag=f"{i}:{n}")
                        with lock:
                            replies.append(reply)
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(replies), THREADS * CALLS)

        spans = self.spans()
        by_id = {s.context.span_id: s for s in spans}
        clients = [s for s in spans if s.kind == SpanKind.CLIENT]
        servers = [s for s in spans if s.kind == SpanKind.SERVER]
        self.assertEqual((len(clients), len(servers)), (THREADS * CALLS, THREADS * CALLS))
        for server in servers:
            caller_span = by_id[server.parent.span_id]
            self.assertEqual(caller_span.kind, SpanKind.CLIENT)
            self.assertEqual(server.context.trace_id, caller_span.context.trace_id)
            root = by_id[caller_span.parent.span_id]
            self.assertTrue(root.name.startswith("caller-"))
        # what the endpoint saw as current is the server span of its own call
        server_ids = {s.context.span_id: s for s in servers}
        for tag, trace_id, span_id in replies:
            i = int(tag.split(":")[0])
            self.assertEqual(trace_id, roots[i], f"call {tag} ran in another trace")
            self.assertIn(span_id, server_ids)
        # each trace holds exactly its own caller's spans
        per_trace: dict[int, set[str]] = {}
        for s in spans:
            per_trace.setdefault(s.context.trace_id, set()).add(s.name)
        self.assertEqual(len(per_trace), THREADS)
        for names in per_trace.values():
            self.assertEqual(len([n for n in names if n.startswith("caller-")]), 1)
