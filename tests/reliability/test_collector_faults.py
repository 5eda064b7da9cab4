"""1. Collector down, slow or failing (issue 14, docs/reliability.md).

One service process set up by ``os_trace_plugins.setup()`` with
``otlp://`` pointing at a real OTLP/HTTP receiver (tests/otlp_receiver.py) that
is switched between healthy and four faults: *refusing* (the port is closed),
*blackhole* (requests are read and never answered), *503*, and
*down-then-up* (closed, then back in the middle of the round).  The process
starts with the collector down.  Interleaved rounds of real oslo.messaging
RPC calls over RabbitMQ (a server and a client in this process) and traced
SQLite queries through SQLAlchemy run under each condition; every call must
succeed, the median over rounds of each round's p99 latency is compared with
the healthy rounds', the spans made are accounted for (received + counted as
dropped = made), the outage log says one WARNING and one INFO per outage,
and after each outage a new span reaches the receiver.
"""

from __future__ import annotations

import gc
import logging
import os
import statistics
import time
import tracemalloc
import uuid
from typing import Any

import oslo_messaging as om
import pytest
import sqlalchemy as sa
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from oslo_messaging import server as om_server

import os_trace_plugins
from os_trace_plugins import _setup
from tests.base import TestCase, make_conf, reset_globals
from tests.figures import report
from tests.functional.rpc_env import register_messaging_opts, reset_builtin_tracer
from tests.otlp_receiver import OTLPReceiver
from tests.reliability.collector import CollectorProcess
from tests.services import RABBIT_URL, require_service

PART = "1 collector"
ROUNDS = 4
RPC_PER_ROUND = 500  # x ROUNDS = 2,000 calls per condition
SQL_PER_ROUND = 2500  # x ROUNDS = 10,000 queries per condition
QUEUE = 1024
FAULTS = ("refusing", "blackhole", "503", "down-then-up")
#: a hard gate well above the issue's 10 %: a request that waited on the
#: exporter would cost ~100x (1 s export timeout, p99 ~10 ms), while the
#: run-to-run spread of the ratio on a shared 2-core machine reached x1.44;
#: the measured ratios are reported and quoted in docs/reliability.md
P99_GATE = 2.0


class Counter(SpanProcessor):
    """Counts the sampled spans the service ended (what export must account for)."""

    def __init__(self) -> None:
        self.count = 0

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self.count += 1


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Echo:
    def echo(self, ctxt: Any, value: Any) -> Any:
        return value


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


class FaultCase(TestCase):
    def setUp(self) -> None:
        super().setUp()
        reset_globals()  # setup() builds its own provider and pipeline
        self._env = os.environ.get("OTEL_BSP_SCHEDULE_DELAY")
        os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "500"
        self.addCleanup(self._restore_env)
        self.logs = Records()
        for name in ("os_trace_plugins", "opentelemetry"):
            logger = logging.getLogger(name)
            logger.addHandler(self.logs)
            self.addCleanup(logger.removeHandler, self.logs)
            self.addCleanup(logger.setLevel, logger.level)
            logger.setLevel(logging.INFO)

    def _restore_env(self) -> None:
        if self._env is None:
            os.environ.pop("OTEL_BSP_SCHEDULE_DELAY", None)
        else:
            os.environ["OTEL_BSP_SCHEDULE_DELAY"] = self._env

    def lines(self, logger: str, level: int, text: str = "") -> list[str]:
        return [r.getMessage() for r in self.logs.records if r.name.startswith(logger)
                and r.levelno == level and text in r.getMessage()]


@pytest.mark.slow
class TestCollectorFaults(FaultCase):
    def test_rpc_and_sql_through_collector_faults(self) -> None:
        require_service("rabbitmq")
        collector = CollectorProcess()
        self.addCleanup(collector.stop)
        collector.close_port()  # down when the service starts
        conf = make_conf(enabled=True, connection_string=f"otlp://{collector.endpoint}",
                         export_timeout=1.0, max_queue_size=QUEUE, shutdown_timeout=2.0,
                         trace_sqlalchemy=True)
        register_messaging_opts(conf)
        conf.register_opts(om_server._pool_opts)
        reset_builtin_tracer()
        self.assertTrue(os_trace_plugins.setup(conf, service="faults"))
        self.assertEqual(len(self.lines("os_trace_plugins", logging.WARNING,
                                        "is unreachable now")), 1)
        collector.reopen_port()
        provider = trace.get_tracer_provider()
        counter = Counter()
        provider.add_span_processor(counter)  # type: ignore[attr-defined]
        processor = _setup._state["processor"]
        outage = processor.outage
        tracer = trace.get_tracer("faults")

        transport = om.get_rpc_transport(conf, url=RABBIT_URL)
        self.addCleanup(transport.cleanup)
        topic = f"os-trace-faults-{uuid.uuid4().hex[:8]}"
        server = om.get_rpc_server(transport, om.Target(topic=topic, server="s1"), [Echo()],
                                   executor="threading")
        server.start()
        self.addCleanup(server.wait)
        self.addCleanup(server.stop)
        client = om.get_rpc_client(transport, om.Target(topic=topic, server="s1"))
        engine = sa.create_engine(f"sqlite:///{self.tmpdir}/faults.db")
        with engine.begin() as c:
            c.execute(sa.text("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
            c.execute(sa.text("INSERT INTO t VALUES (:k, :v)"),
                      [{"k": i, "v": f"v{i}"} for i in range(100)])
        query = sa.text("SELECT v FROM t WHERE k = :k")
        client.call({}, "echo", value=0)  # warm the connections

        def rpc_round(half: Any = None) -> list[float]:
            out = []
            for i in range(RPC_PER_ROUND):
                if half is not None and i == RPC_PER_ROUND // 2:
                    half()
                t0 = time.perf_counter()
                with tracer.start_as_current_span("api"):
                    got = client.call({"request_id": f"req-{i}"}, "echo", value=i)
                out.append(time.perf_counter() - t0)
                self.assertEqual(got, i)
            return out

        def sql_round(half: Any = None) -> list[float]:
            out = []
            with engine.connect() as conn:
                for chunk in range(SQL_PER_ROUND // 100):
                    if half is not None and chunk == SQL_PER_ROUND // 200:
                        half()
                    with tracer.start_as_current_span("db work"):
                        for i in range(100):
                            t0 = time.perf_counter()
                            got = conn.execute(query, {"k": i}).scalar()
                            out.append(time.perf_counter() - t0)
                            self.assertEqual(got, f"v{i}")
            return out

        def fault(case: str) -> Any:
            """Apply ``case``; returns what brings the collector back mid-round."""
            if case in ("refusing", "down-then-up"):
                collector.close_port()
            elif case == "blackhole":
                collector.set_fault("blackhole")
            elif case == "503":
                collector.set_fault("503")
            return collector.reopen_port if case == "down-then-up" else None

        def recover(case: str, r: int) -> bool:
            """The collector is back: the backlog drains, then a new span arrives."""
            collector.reopen_port()
            collector.set_fault(None)
            provider.force_flush(10000)  # type: ignore[attr-defined]
            name = f"probe after {case} {r}"
            with tracer.start_as_current_span(name):
                pass
            provider.force_flush(10000)  # type: ignore[attr-defined]
            return collector.wait_for_name(name)

        cases = ("healthy",) + FAULTS
        rpc_p99: dict[str, list[float]] = {c: [] for c in cases}
        sql_p99: dict[str, list[float]] = {c: [] for c in cases}
        calls = dict.fromkeys(cases, 0)
        dropped = dict.fromkeys(cases, 0)
        back = dict.fromkeys(FAULTS, 0)
        for r in range(ROUNDS):
            order = cases[r % len(cases):] + cases[:r % len(cases)]  # rotate the order
            for case in order:
                before = outage.failed + outage.overflow
                half = fault(case) if case != "healthy" else None
                rpc = rpc_round(half)
                if case == "down-then-up":
                    collector.close_port()  # down again for the SQL half-and-half
                sql = sql_round(half)
                if case != "healthy":
                    back[case] += recover(case, r)
                rpc_p99[case].append(p99(rpc))
                sql_p99[case].append(p99(sql))
                calls[case] += len(rpc)
                dropped[case] += outage.failed + outage.overflow - before

        os_trace_plugins.shutdown()
        received = collector.count()
        lost = counter.count - received - (outage.failed + outage.overflow)
        warnings = self.lines("os_trace_plugins", logging.WARNING, "export to")
        infos = self.lines("os_trace_plugins", logging.INFO, "is back after")
        exporter_lines = [r for r in self.logs.records
                          if r.name.startswith("opentelemetry.exporter")]
        base_rpc = statistics.median(rpc_p99["healthy"])
        base_sql = statistics.median(sql_p99["healthy"])
        ratios = {}
        for case in cases:
            rpc_ratio = statistics.median(rpc_p99[case]) / base_rpc
            sql_ratio = statistics.median(sql_p99[case]) / base_sql
            ratios[case] = (rpc_ratio, sql_ratio)
            report(PART, case, rpc_calls=calls[case], rpc_failed=0,
                   sql_queries=SQL_PER_ROUND * ROUNDS,
                   rpc_p99_ms=statistics.median(rpc_p99[case]) * 1000,
                   rpc_p99_ratio=rpc_ratio,
                   sql_p99_us=statistics.median(sql_p99[case]) * 1e6,
                   sql_p99_ratio=sql_ratio, spans_dropped_counted=dropped[case],
                   back_after_outage=f"{back.get(case, ROUNDS)}/{ROUNDS}")
        report(PART, "all conditions", spans_made=counter.count, spans_received=received,
               spans_dropped_counted=outage.failed + outage.overflow,
               spans_lost_uncounted=max(0, lost), outages=outage.outages,
               outage_warnings=len(warnings), outage_end_infos=len(infos),
               exporter_log_lines=len(exporter_lines))
        self.assertLessEqual(lost, 0, "spans neither received nor counted as dropped")
        self.assertEqual(back, dict.fromkeys(FAULTS, ROUNDS))
        self.assertEqual(len(infos), outage.outages, infos)
        # one line when an outage starts, one more at most when a full queue
        # started it and the line naming the failing export follows
        self.assertGreaterEqual(len(warnings), outage.outages, warnings)
        self.assertLessEqual(len(warnings), 2 * outage.outages, warnings)
        self.assertGreaterEqual(outage.outages, ROUNDS * len(FAULTS))
        for case, (rpc_ratio, sql_ratio) in ratios.items():
            self.assertLess(rpc_ratio, P99_GATE, f"{case}: RPC p99 x{rpc_ratio:.2f}")
            self.assertLess(sql_ratio, P99_GATE, f"{case}: SQL p99 x{sql_ratio:.2f}")


@pytest.mark.slow
class TestQueueBoundsMemory(FaultCase):
    def test_blackhole_memory_stays_bounded_by_the_queue(self) -> None:
        collector = OTLPReceiver().start()
        self.addCleanup(collector.stop)
        collector.set_fault("blackhole")
        conf = make_conf(enabled=True, connection_string=f"otlp://{collector.endpoint}",
                         export_timeout=1.0, max_queue_size=QUEUE, shutdown_timeout=1.0)
        self.assertTrue(os_trace_plugins.setup(conf, service="faults-memory"))
        outage = _setup._state["processor"].outage
        tracer = trace.get_tracer("faults")

        def make(n: int) -> None:
            for i in range(n):
                with tracer.start_as_current_span("nova.compute.manager.build") as span:
                    for k in range(10):
                        span.set_attribute(f"openstack.attr_{k}", f"value-{i}-{k}")

        gc.collect()
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            make(QUEUE)  # about a queue's worth held (queued or in a hung export)
            gc.collect()
            one_queue = tracemalloc.get_traced_memory()[0] - start
            make(5 * QUEUE)
            gc.collect()
            six = tracemalloc.get_traced_memory()[0] - start
            make(10 * QUEUE)  # ten queues more, none exported
            gc.collect()
            sixteen = tracemalloc.get_traced_memory()[0] - start
        finally:
            tracemalloc.stop()
        t0 = time.monotonic()
        os_trace_plugins.shutdown()
        took = time.monotonic() - t0
        per_span = one_queue / QUEUE
        bound = per_span * (QUEUE + 512)  # the queue plus the batch in a hung export
        report(PART, "blackhole memory", spans_made=16 * QUEUE, max_queue_size=QUEUE,
               kib_after_1_queue=one_queue / 1024, kib_after_6_queues=six / 1024,
               kib_after_16_queues=sixteen / 1024, kib_bound_queue_plus_batch=bound / 1024,
               spans_dropped_counted=outage.failed + outage.overflow, shutdown_s=took)
        self.assertLess(sixteen - six, 0.1 * six + 256 * 1024, "memory grows with spans")
        self.assertLess(sixteen, 1.25 * bound)
        self.assertGreaterEqual(outage.failed + outage.overflow, 14 * QUEUE)
        self.assertLess(took, 1.0 + 1.5)  # shutdown_timeout, plus the helper's slack
