"""Issue 14, part 4 (store): 8 processes write the embedded store at once, no span lost.

Eight writer processes, each a service that called ``os_trace_plugins.setup()``
with ``connection_string = sqlite:///<one file>`` (the batch processor over
the SQLite exporter, as every service of a host would), wait at a start line
(a file the test creates once all are ready), then write 2 threads x 300
traces of 2 spans each at full speed and shut down (flush).  The store must
hold N of N spans, every trace complete and owned by its service, and the
integrity check pass.  A writer that reports an unwritten batch or a full
queue (the SDK drops spans then) fails the test.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from os_trace_plugins.store._reader import StoreReader
from tests.figures import report

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROCESSES, THREADS, TRACES, SPANS = 8, 2, 300, 2

WRITER = textwrap.dedent("""
    import os, sys, threading, time
    from oslo_config import cfg
    from opentelemetry import trace
    import os_trace_plugins
    from os_trace_plugins import opts
    store, name, go, threads, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), \\
        int(sys.argv[5])
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf(args=[], default_config_files=[])
    conf.set_override("enabled", True, group="profiler")
    conf.set_override("connection_string", "sqlite:///" + store, group="profiler")
    assert os_trace_plugins.setup(conf, service=name)
    tracer = trace.get_tracer("writer")
    seen = []
    def work(t):
        for i in range(n):
            with tracer.start_as_current_span(f"{name}-{t}-{i}") as root:
                seen.append(format(root.get_span_context().trace_id, "032x"))
                with tracer.start_as_current_span("child"):
                    pass
    print("READY", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    started = time.monotonic()
    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    [w.start() for w in workers]
    [w.join() for w in workers]
    os_trace_plugins.shutdown()   # flushes the batch processor into the store
    print("SECONDS", time.monotonic() - started)
    print("\\n".join(seen))
""")


@pytest.mark.slow
def test_eight_processes_write_one_store_at_once() -> None:
    tmp = tempfile.mkdtemp(prefix="os-trace-8w-")
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: str) -> None:
    store = os.path.join(tmp, "state", "spans.db")
    go = os.path.join(tmp, "go")
    env = dict(os.environ, PYTHONPATH=ROOT)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, store, f"svc{i}", go,
                               str(THREADS), str(TRACES)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
             for i in range(PROCESSES)]
    try:
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            assert line.strip() == "READY", (line, p.stderr.read() if p.stderr else "")
        t0 = time.monotonic()
        open(go, "w").close()  # the start line: all eight write at once
        expected: dict[str, str] = {}
        write_seconds = []
        for i, p in enumerate(procs):
            out, err = p.communicate(timeout=180)
            assert p.returncode == 0, err
            assert "not written" not in err and "Queue is full" not in err, err
            lines = out.split("\n")
            write_seconds.append(float(next(x for x in lines if x.startswith("SECONDS"))
                                       .split()[1]))
            expected.update({t: f"svc{i}" for t in lines
                             if t and not t.startswith("SECONDS")})
        wall = time.monotonic() - t0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    n_traces = PROCESSES * THREADS * TRACES
    n_spans = n_traces * SPANS
    assert len(expected) == n_traces
    conn = sqlite3.connect(store)
    try:
        stored = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    with StoreReader(store) as reader:
        rows = reader.list_traces(limit=n_traces * 2)
    by_id = {r.trace_id: r for r in rows}
    incomplete = [t for t, svc in expected.items()
                  if t not in by_id or by_id[t].span_count != SPANS or not by_id[t].complete
                  or by_id[t].root_service != svc]
    report("4 concurrency", f"store: {PROCESSES} processes writing one SQLite file at once",
           spans_written=n_spans, spans_stored=stored, spans_lost=n_spans - stored,
           traces=n_traces, traces_incomplete=len(incomplete),
           slowest_writer_s=round(max(write_seconds), 2), wall_s=round(wall, 2))
    assert integrity == "ok"
    assert stored == n_spans, f"{n_spans - stored} spans lost"
    assert set(by_id) == set(expected)
    assert incomplete == []
