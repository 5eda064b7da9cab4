"""CPU instructions per SQL statement, counted by valgrind's callgrind.

Timings on the shared 2-core machine move by more than the resting cost we
must prove (≤ max(1 µs, 1%) a statement), so the repeatable figure is an
instruction count: each case runs in its own process under
``valgrind --tool=callgrind`` twice, with ``SHORT`` and ``LONG`` statements;
the difference divided by ``LONG - SHORT`` is the per-statement count, start-up
and set-up cancelling out.  Only this process's instructions are counted (the
database server's are not); spans go through a SimpleSpanProcessor to a
discarding exporter, so the export path is counted in the same thread for
ours, the floor and contrib alike.

``python -m bench.sql_callgrind`` prints the table; :func:`main` is what
``python -m bench sql`` appends.  One case alone:
``python -m bench.sql_callgrind --one sqlite plain ours-off 100``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main", "CASES", "ENGINES", "count"]

SHORT, LONG = 200, 1200

#: case name -> what it measures
CASES = {
    "plain": "no instrumentation at all",
    "ours-off": "ours installed, trace_sqlalchemy off, sql_trace_on_request on "
                "(the defaults), no flagged request running",
    "ours-unsampled": "ours on, statement inside an unsampled trace",
    "ours-sampled": "ours on, statement inside a sampled trace (span recorded)",
    "dispatch-floor": "SQLAlchemy's dispatch to two no-op cursor listeners",
    "floor": "two no-op cursor listeners + one bare SDK span, same name/attributes",
    "contrib": "opentelemetry-instrumentation-sqlalchemy (forced onto this "
               "SQLAlchemy), sampled",
    "classify-public": "classify one new context: public API (ours)",
    "classify-private": "classify one new context: private context keys",
}
ENGINES = ("plain", "oslo.db")
PG_URL = os.environ.get("OS_TRACE_PG_URL",
                        "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
URLS = {"sqlite": "sqlite://", "postgresql": PG_URL}


# -- inside the measured process ----------------------------------------------
def _engine(db: str, kind: str) -> Any:
    import sqlalchemy as sa

    url = URLS[db]
    if kind == "oslo.db":
        from oslo_db.sqlalchemy import enginefacade

        facade = enginefacade.transaction_context()
        facade.configure(connection=url)
        return facade.writer.get_engine()
    kw: dict[str, Any] = {"poolclass": sa.pool.StaticPool} if db == "sqlite" else {}
    return sa.create_engine(url, **kw)


def _classify_loop(n: int, public: bool) -> None:
    from opentelemetry import baggage, trace
    from opentelemetry.sdk.trace import TracerProvider

    from os_trace_plugins.db import _gate as gate

    provider = TracerProvider()
    gate.set_provider(provider)
    parent = provider.get_tracer("bench").start_span("request")
    ctxs = [baggage.set_baggage("x", str(i), trace.set_span_in_context(parent))
            for i in range(n)]
    _instrument_on()
    if public:
        for ctx in ctxs:
            gate.kind_of(ctx)
        return
    from opentelemetry.baggage import _BAGGAGE_KEY  # type: ignore[attr-defined]
    from opentelemetry.trace.propagation import _SPAN_KEY
    from opentelemetry.trace.span import INVALID_SPAN
    sampler = provider.sampler
    client = trace.SpanKind.CLIENT
    for ctx in ctxs:  # what gate._classify did with the private keys
        entries = ctx.get(_BAGGAGE_KEY)
        flag = 4 if entries is not None and entries.get("os_trace.sql") == "1" else 0
        sc = (ctx.get(_SPAN_KEY) or INVALID_SPAN).get_span_context()
        if sc.is_valid:
            sampler.should_sample(ctx, sc.trace_id, "SQL", client).decision.is_recording()
        del flag


def run_one(db: str, kind: str, case: str, n: int) -> None:
    """Set ``case`` up on a ``kind`` engine of ``db`` and run ``n`` statements."""
    if case.startswith("classify"):
        _classify_loop(n, case == "classify-public")
        return
    import uuid

    import sqlalchemy as sa
    from opentelemetry import trace
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from bench.bench_sql import _Discard, _setup_table
    from os_trace_plugins.db import _attributes as attributes

    class _Count(SpanProcessor):
        ended = 0

        def on_end(self, span: Any) -> None:
            _Count.ended += 1

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_Discard()))
    provider.add_span_processor(_Count())
    tracer = provider.get_tracer("bench")
    engine = _engine(db, kind)
    name = f"ostp_cg_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    table = _setup_table(engine, name, rows=3)
    stmt = sa.select(table.c.id, table.c.name).where(table.c.id == sa.bindparam("id"))
    sampled = trace.set_span_in_context(tracer.start_span("request"))
    unsampled = trace.set_span_in_context(trace.NonRecordingSpan(trace.SpanContext(
        0x1234, 0x5678, is_remote=True, trace_flags=trace.TraceFlags(0))))
    ctx = sampled
    extra: Callable[[], None] = lambda: None  # noqa: E731
    if case.startswith("ours"):
        from os_trace_plugins._hooks import shared
        from os_trace_plugins._switches import SWITCHES
        from os_trace_plugins.db._hook import SQLAlchemyHook

        SWITCHES.set("trace_sqlalchemy", case != "ours-off")
        shared(SQLAlchemyHook).instrument(None, provider)
        ctx = unsampled if case == "ours-unsampled" else sampled
    elif case in ("floor", "dispatch-floor"):
        def noop_before(conn: Any, cursor: Any, statement: str, params: Any,
                        context: Any, executemany: bool) -> tuple[Any, Any]:
            return statement, params

        sa.event.listen(engine, "before_cursor_execute", noop_before, retval=True)
        sa.event.listen(engine, "after_cursor_execute", lambda *a: None)
        if case == "floor":
            text = str(stmt.compile(engine))
            span_name, attrs = attributes.EngineInfo(engine).entry(text)
            start = tracer.start_span
            kind_ = trace.SpanKind.CLIENT

            def extra() -> None:
                start(span_name, None, kind_, attrs).end()
    elif case == "contrib":
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().instrument(engine=engine, tracer_provider=provider,
                                            skip_dep_check=True)
    from opentelemetry import context as otel_context

    otel_context.attach(ctx)
    args = {"id": 2}
    with engine.connect() as conn:
        conn.execute(stmt, args).fetchall()  # warm caches before counting
        before = _Count.ended
        _instrument_on()
        for _ in range(n):
            conn.execute(stmt, args).fetchall()
            extra()
        made = _Count.ended - before
    wants = n if case in ("ours-sampled", "floor", "contrib") else 0
    if made != wants:  # the case does not measure what it says
        raise SystemExit(f"{case}: {made} spans for {n} statements, expected {wants}")
    if db != "sqlite":
        with engine.begin() as c:
            c.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    engine.dispose()


def _instrument_on() -> None:
    """Start callgrind's instrumentation now (the run began with it off, so the
    imports and set-up run at valgrind's plain speed and are not counted)."""
    if os.environ.get("OS_TRACE_CALLGRIND"):
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())],
                       capture_output=True, timeout=600, check=True)


# -- the driver -----------------------------------------------------------------
def _collected(args: Sequence[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out}",
             sys.executable, "-m", "bench.sql_callgrind", "--one", *args],
            capture_output=True, text=True, timeout=1800,
            env=dict(os.environ, OS_TRACE_CALLGRIND="1", PYTHONHASHSEED="0"),
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        found = re.search(r"Collected\s*:\s*(\d+)", proc.stderr)
        if proc.returncode != 0 or not found:
            raise RuntimeError(f"callgrind run {args} failed: {proc.stderr[-2000:]}")
        return int(found.group(1))


def count(db: str, kind: str, case: str) -> float:
    """Instructions per statement (or per classification) of one case."""
    short = _collected([db, kind, case, str(SHORT)])
    long = _collected([db, kind, case, str(LONG)])
    return (long - short) / (LONG - SHORT)


def _reachable(db: str) -> bool:
    if db == "sqlite":
        return True
    try:
        import sqlalchemy as sa

        probe = sa.create_engine(URLS[db])
        with probe.connect():
            pass
        probe.dispose()
        return True
    except Exception:
        return False


def _verdicts(c: dict[str, float], plain_us: float | None) -> list[str]:
    plain = c["plain"]
    us = (plain_us / plain) if plain_us else None  # µs per instruction, from timing
    off = c["ours-off"] - plain
    budget = max(0.01 * plain, (1.0 / us) if us else 0.01 * plain)
    dispatch = c["dispatch-floor"] - plain
    unsampled = c["ours-unsampled"] - plain
    sampled, floor = c["ours-sampled"] - plain, c["floor"] - plain
    contrib = c["contrib"] - plain

    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    est = f" ≈ {off * us:+.2f} µs" if us else ""
    return [
        f"off: {off:+.0f} instructions a statement ({off / plain * 100:+.2f}% of plain"
        f"{est}); target ≤ max(1 µs, 1%) = {budget:.0f} instructions: "
        f"{mark(off <= budget)}",
        f"on, unsampled: {unsampled:+.0f} vs the dispatch floor's {dispatch:+.0f} "
        f"(target ≤ floor + 10% = {dispatch * 1.1:.0f}: "
        f"{mark(unsampled <= dispatch * 1.1)})",
        f"on, sampled: {sampled:+.0f} = {sampled / floor:.2f} × the floor's {floor:+.0f} "
        f"(target ≤ 1.2: {mark(sampled <= 1.2 * floor)}); contrib {contrib:+.0f} "
        f"(ours below it: {mark(sampled < contrib)})",
    ]


def main(plain_us: dict[tuple[str, str], float] | None = None, jobs: int = 2) -> str:
    """The instruction table for every reachable database and engine kind."""
    if shutil.which("valgrind") is None:
        return "\nvalgrind not installed: no instruction counts\n"
    from concurrent.futures import ThreadPoolExecutor

    stmt_cases = [c for c in CASES if not c.startswith("classify")]
    combos = [(db, kind) for db in URLS if _reachable(db) for kind in ENGINES]
    wanted = [(db, kind, case) for db, kind in combos for case in stmt_cases]
    wanted += [("sqlite", "plain", "classify-public"), ("sqlite", "plain", "classify-private")]
    with ThreadPoolExecutor(jobs) as pool:
        counts = dict(zip(wanted, pool.map(lambda w: count(*w), wanted), strict=True))
    out = [f"\n### Instructions per statement (callgrind, ({LONG} - {SHORT}) statements)",
           "", "| database | engine | " + " | ".join(stmt_cases) + " |",
           "|---|---|" + "---:|" * len(stmt_cases)]
    notes: list[str] = [f"{db} not reachable: skipped" for db in URLS
                        if db not in {d for d, _ in combos}]
    for db, kind in combos:
        c = {case: counts[(db, kind, case)] for case in stmt_cases}
        plain = c["plain"]
        cells = [f"{c[case]:.0f}" + ("" if case == "plain" else f" ({c[case] - plain:+.0f})")
                 for case in stmt_cases]
        out.append(f"| {db} | {kind} | " + " | ".join(cells) + " |")
        us = (plain_us or {}).get((db, kind))
        notes += [f"{db}, {kind} engine: {v}" for v in _verdicts(c, us)]
    pub = counts[("sqlite", "plain", "classify-public")]
    priv = counts[("sqlite", "plain", "classify-private")]
    notes.append(f"classifying one new context (once per context, not per statement): "
                 f"public API {pub:.0f} instructions, private keys {priv:.0f} "
                 f"({pub - priv:+.0f}, {pub / priv:.2f} ×)")
    out += [""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        _db, _kind, _case, _n = sys.argv[2:6]
        run_one(_db, _kind, _case, int(_n))
    else:
        print(main())
