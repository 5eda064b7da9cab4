"""Per-SQL-statement cost: ours against plain SQLAlchemy and the peers.

One process, interleaved rounds (``bench.harness.interleave``), minimum of the
per-statement time over rounds.  Workload: a compiled Core SELECT by primary
key on a persistent connection (the shape of most OpenStack DB API calls),
on SQLite in memory and on PostgreSQL (skipped when unreachable).

Each database runs twice: a plain engine, and an engine built by oslo.db's
enginefacade (it carries listeners of its own, so SQLAlchemy dispatches
events for each of its statements whatever we do).  The repeatable figures
are the callgrind instruction counts of :mod:`bench.sql_callgrind`, appended.

Cases
- plain: no instrumentation at all.
- ours, off: installed, trace_sqlalchemy and sql_trace_on_request off.
- ours, off, per-request allowed: trace_sqlalchemy off, sql_trace_on_request
  on (the default), no flagged request running in the process.
- ours, off, flagged request: the same, inside a sampled request whose
  baggage carries os_trace.sql=1 and that our hooks reported running
  (``_flagged.enter``): the statement is recorded.
- ours, on, unsampled: inside a trace that is not sampled (the sampler,
  asked once per context, says drop: the wrapper calls straight through).
- ours, on, sampled: inside a sampled trace (the span is recorded).
- contrib: opentelemetry-instrumentation-sqlalchemy, forced onto this
  SQLAlchemy with ``skip_dep_check=True``, on its own engine (``engine=``).
- osprofiler: ``osprofiler.sqlalchemy.add_tracing`` with an initialised
  profiler and a discarding notifier.
- 2 no-op listeners: SQLAlchemy's own event dispatch, no span (the part of
  the floor nobody's listener can avoid).
- floor: two no-op cursor listeners plus one bare SDK span (start + end,
  the same name, kind and attributes as ours).
ours, contrib and floor share one TracerProvider (BatchSpanProcessor over a
discarding exporter), and run inside the same sampled parent span.
"""

from __future__ import annotations

import os
import platform
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from bench.harness import Result, added, interleave, table
from os_trace_plugins import _flagged
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.db import _attributes as attributes
from os_trace_plugins.db import _toggle as toggle

__all__ = ["main"]


def _contrib_label() -> str:
    from importlib import metadata
    try:
        version = metadata.version("opentelemetry-instrumentation-sqlalchemy")
    except metadata.PackageNotFoundError:  # pragma: no cover - a bench extra
        version = "?"
    return f"contrib {version} (forced)"


CONTRIB = _contrib_label()

PG_URL = os.environ.get("OS_TRACE_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


class _Discard(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Discard(), max_queue_size=8192,
                                                   schedule_delay_millis=200))
    return provider


def _setup_table(engine: sa.Engine, name: str, rows: int = 10) -> sa.Table:
    meta = sa.MetaData()
    table = sa.Table(name, meta, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("name", sa.String(40)))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i, "name": f"n{i}"} for i in range(1, rows + 1)])
    return table


def _contexts(tracer: trace.Tracer) -> tuple[Any, Any]:
    sampled = tracer.start_span("request")
    unsampled = trace.NonRecordingSpan(trace.SpanContext(
        0x1234, 0x5678, is_remote=True, trace_flags=trace.TraceFlags(0)))
    return trace.set_span_in_context(sampled), trace.set_span_in_context(unsampled)


RESTING = ("plain", "ours, off", "ours, off, per-request allowed")


def _run_db(title: str, url: str, inner: int, rounds: int,
            resting_inner: int = 0, resting_rounds: int = 0, kind: str = "plain",
            ) -> tuple[str, float]:
    provider = _provider()
    tracer = provider.get_tracer("bench")
    sampled_ctx, unsampled_ctx = _contexts(tracer)
    table_name = f"ostp_bench_{uuid.uuid4().hex[:8]}"
    kw: dict[str, Any] = {"poolclass": sa.pool.StaticPool} if url.startswith("sqlite") else {}

    def engine() -> sa.Engine:
        if kind == "oslo.db":
            from oslo_db.sqlalchemy import enginefacade

            facade = enginefacade.transaction_context()
            facade.configure(connection=url)
            return facade.writer.get_engine()
        return sa.create_engine(url, **kw)

    plain_e, floor_e, osp_e, contrib_e = engine(), engine(), engine(), engine()
    all_e = (plain_e, floor_e, osp_e, contrib_e)
    tables = {}
    if url.startswith("sqlite"):  # one in-memory database per engine
        for e in all_e:
            tables[id(e)] = _setup_table(e, table_name)
    else:
        t = _setup_table(plain_e, table_name)
        for e in all_e:
            tables[id(e)] = t

    # floor: two no-op listeners + one bare span with our attributes
    def noop_before(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
                    executemany: bool) -> tuple[Any, Any]:
        return statement, params

    def noop_after(*_: Any) -> None:
        return None

    sa.event.listen(floor_e, "before_cursor_execute", noop_before, retval=True)
    sa.event.listen(floor_e, "after_cursor_execute", noop_after)

    # osprofiler with a discarding notifier and a live profiler
    from osprofiler import notifier, profiler
    from osprofiler import sqlalchemy as osp_sqlalchemy
    notifier.set(lambda info, context=None: None)
    osp_sqlalchemy.add_tracing(sa, osp_e, "db")

    # contrib, forced onto this SQLAlchemy, only on its own engine
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    contrib = SQLAlchemyInstrumentor()
    contrib.instrument(engine=contrib_e, tracer_provider=provider, skip_dep_check=True)

    conns = {id(e): e.connect() for e in all_e}

    def query_fn(e: sa.Engine) -> Callable[[], Any]:
        conn, tbl = conns[id(e)], tables[id(e)]
        stmt = sa.select(tbl.c.id, tbl.c.name).where(tbl.c.id == sa.bindparam("id"))
        args = {"id": 3}

        def run() -> Any:
            return conn.execute(stmt, args).fetchall()

        return run

    plain_q, floor_q = query_fn(plain_e), query_fn(floor_e)
    osp_q, contrib_q = query_fn(osp_e), query_fn(contrib_e)
    # the statement text and attributes ours gives this query, for the floor span
    stmt_text = str(sa.select(tables[id(plain_e)].c.id, tables[id(plain_e)].c.name).where(
        tables[id(plain_e)].c.id == sa.bindparam("id")).compile(plain_e))
    floor_name, floor_attrs = attributes.EngineInfo(plain_e).entry(stmt_text)
    start_span = tracer.start_span

    def floor() -> None:
        floor_q()
        start_span(floor_name, None, SpanKind.CLIENT, floor_attrs).end()

    def ours_state(installed: bool, always: bool, on_request: bool) -> Callable[[], None]:
        def apply() -> None:
            if installed and not toggle.TOGGLE.installed:
                toggle.TOGGLE.install(provider.get_tracer("os_trace_plugins.sqlalchemy"),
                                      provider)
            if not installed and toggle.TOGGLE.installed:
                toggle.TOGGLE.uninstall()
            SWITCHES.set("trace_sqlalchemy", always)
            SWITCHES.set("sql_trace_on_request", on_request)
            toggle.TOGGLE.apply()
        return apply

    tokens: list[Any] = []

    def enter(ctx: Any, state: Callable[[], None],
              osp: bool = False) -> Callable[[], None]:
        def setup() -> None:
            state()
            tokens.append((otel_context.attach(ctx), _flagged.enter(ctx)))
            if osp:
                profiler.init("bench-key")
        return setup

    def leave() -> None:
        token, flagged = tokens.pop()
        _flagged.leave(flagged)
        otel_context.detach(token)
        profiler.clean()

    off = ours_state(False, False, False)
    flagged_ctx = baggage.set_baggage("os_trace.sql", "1", sampled_ctx)
    cases: dict[str, Callable[[], object]] = {
        "plain": plain_q,
        "ours, off": plain_q,
        "ours, off, per-request allowed": plain_q,
        "ours, off, flagged request": plain_q,
        "ours, on, unsampled": plain_q,
        "ours, on, sampled": plain_q,
        CONTRIB: contrib_q,
        "osprofiler add_tracing": osp_q,
        "2 no-op listeners": floor_q,
        "floor (2 no-op listeners + 1 span)": floor,
    }
    setup = {
        "plain": enter(sampled_ctx, off),
        "ours, off": enter(sampled_ctx, ours_state(True, False, False)),
        "ours, off, per-request allowed": enter(sampled_ctx, ours_state(True, False, True)),
        "ours, off, flagged request": enter(flagged_ctx, ours_state(True, False, True)),
        "ours, on, unsampled": enter(unsampled_ctx, ours_state(True, True, False)),
        "ours, on, sampled": enter(sampled_ctx, ours_state(True, True, False)),
        CONTRIB: enter(sampled_ctx, off),
        "osprofiler add_tracing": enter(sampled_ctx, off, osp=True),
        "2 no-op listeners": enter(sampled_ctx, off),
        "floor (2 no-op listeners + 1 span)": enter(sampled_ctx, off),
    }
    teardown = {name: leave for name in cases}
    resting: dict[str, Result] = {}
    try:
        results = interleave(cases, inner=inner, rounds=rounds, setup=setup,
                             teardown=teardown, timer=time.process_time)
        if resting_rounds:  # many short rounds: the resting cost is within noise
            resting = interleave({n: cases[n] for n in RESTING}, inner=resting_inner,
                                 rounds=resting_rounds, setup=setup, teardown=teardown,
                                 timer=time.process_time)
    finally:
        off()
        contrib.uninstrument()
        for conn in conns.values():
            conn.close()
        if not url.startswith("sqlite"):
            with plain_e.begin() as c:
                c.exec_driver_sql(f"DROP TABLE IF EXISTS {table_name}")
        for e in all_e:
            e.dispose()
        provider.shutdown()
    out = table(title, results, "plain", floor="floor (2 no-op listeners + 1 span)",
                notes=_verdict(results))
    if resting:
        out += "\n" + table(
            f"{title}: resting cost, {resting_rounds} short interleaved rounds", resting,
            "plain", notes=_resting_verdict(resting))
    return out, results["plain"].min


def _resting_verdict(r: dict[str, Result]) -> list[str]:
    plain = r["plain"].min
    lines = []
    for name in RESTING[1:]:
        delta = r[name].min / plain - 1
        us = r[name].min - plain
        ok = us <= max(1.0, 0.01 * plain)
        lines.append(f"{name} vs plain: {us:+.2f} µs, {delta * 100:+.1f}% (target ≤ "
                     f"max(1 µs, 1%): {'met' if ok else 'NOT met'}; timing noise "
                     "on this machine exceeds it: the instruction counts decide)")
    return lines


def _verdict(r: dict[str, Result]) -> list[str]:
    plain = r["plain"].min
    floor = added(r, "floor (2 no-op listeners + 1 span)", "plain")
    contrib = added(r, CONTRIB, "plain")
    ours = added(r, "ours, on, sampled", "plain")
    unsampled = added(r, "ours, on, unsampled", "plain")
    dispatch = added(r, "2 no-op listeners", "plain")
    flagged = added(r, "ours, off, flagged request", "plain")

    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    off = r["ours, off"].min / plain - 1
    per_req = r["ours, off, per-request allowed"].min / plain - 1
    vs_contrib = ours / contrib if contrib > 0 else float("nan")
    vs_floor = ours / floor if floor > 0 else float("nan")
    return [
        f"off vs plain: {off * 100:+.1f}% (off runs SQLAlchemy's own, unwrapped "
        "methods: any difference is this run's noise)",
        f"off with per-request tracing allowed (unflagged request): {per_req * 100:+.1f}%",
        f"on, unsampled: {unsampled:+.2f} µs added (target ≤ the dispatch floor + 10%: "
        f"{mark(unsampled <= 1.1 * dispatch)}; SQLAlchemy's dispatch to two no-op "
        f"listeners: {dispatch:+.2f} µs)",
        f"flagged request while trace_sqlalchemy is off: {flagged:+.2f} µs added "
        f"({flagged / floor if floor > 0 else float('nan'):.2f} × the floor)",
        f"on, sampled: {ours:.2f} µs added = {vs_contrib:.2f} × contrib's {contrib:.2f} µs "
        f"(target < 1: {mark(vs_contrib < 1)}) = {vs_floor:.2f} × the floor's "
        f"{floor:.2f} µs (target ≤ 1.2: {mark(vs_floor <= 1.2)})",
    ]


def main(quick: bool = False) -> str:
    rounds = 5 if quick else 25
    head = [
        "## SQL statement cost (os_trace_plugins.db)",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs shared with other jobs; "
        f"Python {platform.python_version()}, SQLAlchemy {sa.__version__}, "
        f"OpenTelemetry SDK {_version('opentelemetry-sdk')}, "
        f"contrib {_version('opentelemetry-instrumentation-sqlalchemy')}, "
        f"osprofiler {_version('osprofiler')}",
        "- per statement: compiled Core SELECT by primary key, persistent connection; "
        "CPU time of this process (time.process_time: other jobs on the shared cores "
        "and the database server's own work are not counted; the exporter thread is), "
        "minimum over interleaved rounds; added = case minus plain",
        "",
    ]
    out = "\n".join(head) + "\n"
    plain_us: dict[tuple[str, str], float] = {}
    dbs = [("sqlite", "SQLite in memory", "sqlite://", 1000 if quick else 2000)]
    try:
        probe = sa.create_engine(PG_URL)
        with probe.connect():
            pass
        probe.dispose()
        dbs.append(("postgresql", "PostgreSQL 127.0.0.1 (psycopg2)", PG_URL,
                    100 if quick else 300))
    except Exception as exc:  # the PostgreSQL table is optional
        out += f"\nPostgreSQL not reachable ({type(exc).__name__}): skipped\n"
    for db, title, url, inner in dbs:
        for kind in ("plain", "oslo.db"):
            label = title + (", oslo.db enginefacade engine" if kind == "oslo.db" else "")
            text, plain_us[(db, kind)] = _run_db(
                label, url, inner, rounds, 200 if db != "sqlite" else 500,
                11 if quick else 31, kind=kind)
            out += "\n" + text
    if not quick and os.environ.get("OS_TRACE_BENCH_CALLGRIND", "1") != "0":
        from bench import sql_callgrind
        out += sql_callgrind.main(plain_us)
    return out


def _version(dist: str) -> str:
    from importlib import metadata
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"
