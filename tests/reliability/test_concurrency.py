"""Issue 14, part 4: concurrency.  Traces never mix; reused workers start clean.

Two scenarios, each in a child process with every hook a service gets from
``setup()`` (rpc, sqlalchemy, threads) on an in-memory exporter:

* **32 OS threads**, each running 10 traces one after the other;
* **200 eventlet greenthreads** (monkey-patched child, the RPC server on
  oslo.messaging's eventlet executor), each running 5 traces.

A trace is a root span -> an RPC ``call`` over the shared RabbitMQ (a topic of
its own) -> the endpoint runs a SQL query on a SQLite file and hands a second
query to a worker pool (``concurrent.futures``, carried by the threads hook),
so 5 spans per trace.  From the finished spans: every span is there (N of N),
no span has a parent in another trace, each SQL span's parent is its own
call's server span, and the endpoint ran in its caller's trace.

Reused workers: each caller thread/greenthread checks, before each trace and
after the last, that no context is attached (``context.get_current()`` is
empty); after every call the caller submits a probe to the RPC server's
executor and one to the hand-off pool, *around* our submit wrapper (the
original ``submit``), so the probe sees the worker's own context, not one we
bind; under load it runs on a worker that just served an item.  The probes
are submitted outside any trace: a pool that starts a worker thread during a
submit we do not wrap gives it the submitter's context for the thread's life
(``Thread.start`` is carried), which a probe from inside the endpoint would
measure instead of a leak of a work item.  The figures are printed at the end
of the run.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import threading
import uuid
from typing import Any

import pytest

from tests.figures import report
from tests.functional.threads_env import emit, run_child
from tests.reliability.spans import foreign_parents
from tests.services import require_service

CHILD = "tests.reliability.test_concurrency"
SPANS_PER_TRACE = 5
SERVER_WORKERS = 16
HANDOFF_WORKERS = 4


def raw_submit(executor: Any, fn: Any) -> Any:
    """``executor.submit(fn)`` through the original method, around every wrapper
    (ours binds a context to the task, which would hide the worker's own)."""
    return inspect.unwrap(type(executor).submit)(executor, fn)


def probe() -> tuple[int, bool]:
    """On a pool worker: (who, whether a context is left attached here)."""
    from opentelemetry import context, trace

    left = bool(context.get_current()) or trace.get_current_span().get_span_context().is_valid
    return threading.get_ident(), left


class Lookup:
    """The endpoint: SQL here, SQL on a hand-off worker, what it saw."""

    def __init__(self, engine: Any, handoff: Any) -> None:
        self.engine, self.handoff = engine, handoff
        self.lock = threading.Lock()
        self.served: set[int] = set()

    def _query(self, tag: str) -> str:
        from sqlalchemy import text

        with self.lock:
            self.served.add(threading.get_ident())
        with self.engine.connect() as conn:
            return str(conn.execute(text("SELECT :tag AS tag"), {"tag": tag}).scalar())

    def lookup(self, ctxt: Any, tag: str) -> list[Any]:
        from opentelemetry import trace

        self._query(tag)
        handed = self.handoff.submit(self._query, tag + "/handoff").result()
        sc = trace.get_current_span().get_span_context()
        return [tag, handed, sc.trace_id, sc.span_id]


def scenario(provider: Any, workers: int, traces: int, green: bool) -> None:
    """In the child: the service, the callers, the probes; emits the bookkeeping."""
    from concurrent.futures import ThreadPoolExecutor

    import oslo_messaging as om
    import sqlalchemy
    from opentelemetry import context
    from oslo_messaging import server as om_server

    from os_trace_plugins import _switches
    from os_trace_plugins._hooks import shared
    from os_trace_plugins.db._hook import SQLAlchemyHook
    from os_trace_plugins.rpc._hook import RPCHook
    from os_trace_plugins.threads import ThreadsHook
    from tests.base import make_conf
    from tests.functional.rpc_env import register_messaging_opts
    from tests.services import RABBIT_URL

    conf = make_conf(trace_sqlalchemy=True)
    register_messaging_opts(conf)
    conf.register_opts(om_server._pool_opts)
    conf.set_override("executor_thread_pool_size", SERVER_WORKERS)
    _switches.bind(conf)
    for hook in (RPCHook, SQLAlchemyHook, ThreadsHook):
        shared(hook).instrument(conf, provider)
    tracer = provider.get_tracer("callers")

    db = os.path.join(tempfile.mkdtemp(prefix="os-trace-conc-"), "service.db")
    engine = sqlalchemy.create_engine(f"sqlite:///{db}", pool_size=SERVER_WORKERS * 2)
    endpoint = Lookup(engine, ThreadPoolExecutor(HANDOFF_WORKERS))
    transport = om.get_rpc_transport(conf, url=RABBIT_URL)
    target = om.Target(topic=f"os-trace-conc-{uuid.uuid4().hex[:8]}", server="s1")
    # no executor named: oslo.messaging picks eventlet when monkey-patched
    server = om.get_rpc_server(transport, target, [endpoint])
    server.start()
    client = om.get_rpc_client(transport, target, timeout=60)
    executor = server._work_executor
    lock = threading.Lock()
    calls: list[list[Any]] = []
    errors: list[str] = []
    left_on_callers: list[str] = []
    server_probes: list[Any] = []
    handoff_probes: list[Any] = []

    def caller(w: int) -> None:
        for i in range(traces + 1):
            if context.get_current():  # before each trace, and after the last
                with lock:
                    left_on_callers.append(f"{w}/{i}: {dict(context.get_current())}")
            if i == traces:
                return
            with tracer.start_as_current_span(f"request {w}-{i}") as root:
                sc = root.get_span_context()
                try:
                    reply = client.call({"request_id": f"req-{w}-{i}"}, "lookup",
                                        tag=f"{w}-{i}")
                except Exception as exc:
                    with lock:
                        errors.append(f"{w}-{i}: {exc!r}")
                    continue
            with lock:
                calls.append([f"{w}-{i}", sc.trace_id, sc.span_id, reply])
                # outside any trace: a worker these start begins empty
                server_probes.append(raw_submit(executor, probe))
                handoff_probes.append(raw_submit(endpoint.handoff, probe))

    if green:
        import eventlet

        pool = [eventlet.spawn(caller, w) for w in range(workers)]
        for g in pool:
            g.wait()
    else:
        threads = [threading.Thread(target=caller, args=(w,)) for w in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
    served_server = set()

    def results(futures: list[Any]) -> list[tuple[int, bool]]:
        return [f.result(timeout=30) for f in futures]

    probed_server = results(server_probes)
    probed_handoff = results(handoff_probes)
    served_server.update(endpoint.served)
    server.stop()
    server.wait()
    emit({"calls": calls, "errors": errors, "left_on_callers": left_on_callers,
          "server_probes": probed_server, "handoff_probes": probed_handoff,
          "served": sorted(served_server)})


def threads_child(provider: Any) -> None:
    scenario(provider, workers=32, traces=10, green=False)


def green_child(provider: Any) -> None:
    scenario(provider, workers=200, traces=5, green=True)


def check(test: Any, case: str, spans: dict[str, dict[str, Any]], result: dict[str, Any],
          workers: int, traces: int) -> None:
    n = workers * traces
    rows = list(spans.values())
    by_id = {s["span_id"]: s for s in rows}
    test.assertEqual(result["errors"], [])
    test.assertEqual(len(result["calls"]), n)
    wrong: list[str] = []
    for tag, trace_id, root_id, (rtag, handed, seen_trace, seen_span) in result["calls"]:
        server = by_id.get(seen_span)
        if (rtag != tag or handed != tag + "/handoff" or seen_trace != trace_id
                or server is None or server["trace_id"] != trace_id):
            wrong.append(f"{tag}: endpoint ran in {seen_trace:032x}, caller {trace_id:032x}")
            continue
        client = by_id.get(server["parent"])
        if client is None or client["parent"] != root_id:
            wrong.append(f"{tag}: server span not under its caller's CLIENT span")
    sql = [s for s in rows if "db.system.name" in s["attributes"]]
    servers = {s["span_id"] for s in rows if s["name"] == "lookup process"}
    sql_misparented = [s["name"] for s in sql
                       if s["parent"] not in servers
                       or by_id[s["parent"]]["trace_id"] != s["trace_id"]]
    foreign = foreign_parents(rows)
    left_server = [p for p in result["server_probes"] if p[1]]
    left_handoff = [p for p in result["handoff_probes"] if p[1]]
    served = set(result["served"])
    reused = sum(1 for who, _ in result["server_probes"] + result["handoff_probes"]
                 if who in served)
    report("4 concurrency", case, traces=n, rpc_calls=len(result["calls"]),
           spans_expected=n * SPANS_PER_TRACE, spans_seen=len(rows),
           spans_lost=n * SPANS_PER_TRACE - len(rows), sql_spans=len(sql),
           foreign_parents=len(foreign), wrong_trace=len(wrong) + len(sql_misparented),
           worker_checks=n + workers + len(result["server_probes"])
           + len(result["handoff_probes"]),
           probes_on_reused_workers=reused,
           contexts_left=len(result["left_on_callers"]) + len(left_server)
           + len(left_handoff))
    test.assertEqual(len(rows), n * SPANS_PER_TRACE, "spans lost or extra")
    test.assertEqual(len(sql), 2 * n)
    test.assertEqual(foreign, [])
    test.assertEqual(wrong, [])
    test.assertEqual(sql_misparented, [])
    test.assertEqual(result["left_on_callers"], [], "context left on a caller worker")
    test.assertEqual(left_server, [], "context left on an RPC server worker")
    test.assertEqual(left_handoff, [], "context left on a hand-off worker")
    test.assertEqual(len(result["server_probes"]), n)
    test.assertEqual(len(result["handoff_probes"]), n)
    test.assertGreater(reused, 0, "no probe ran on a worker that had served an item")


@pytest.mark.slow
def test_32_threads_rpc_and_sql(rabbitmq: str) -> None:
    import unittest

    spans, result = run_child(f"{CHILD}:threads_child", timeout=240)
    check(unittest.TestCase(), "32 threads x 10 traces (RPC + SQL + hand-off)", spans,
          result, 32, 10)


@pytest.mark.slow
def test_200_greenthreads_rpc_and_sql(rabbitmq: str) -> None:
    import unittest

    require_service("rabbitmq")
    spans, result = run_child(f"{CHILD}:green_child", eventlet=True, timeout=240)
    check(unittest.TestCase(), "200 eventlet greenthreads x 5 traces (RPC + SQL + hand-off)",
          spans, result, 200, 5)
