"""Embedded store and reports: listing, rendering and writing against their budgets.

``python -m bench store [--quick] [--write]``.  Budgets from the issue:
listing 10,000 stored traces < 1 s; the terminal tree of a 5,000-span trace
< 1 s (read from the store, tree built, rendered); its HTML report opens in
Chromium < 3 s (measured with selenium when Chromium is installed).  Figures
are the minimum (and median) over interleaved rounds; ratio = time / budget.
Writing is reported as the exporter's cost per span in a 512-span batch (the
batch processor's background thread, never a request path).
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable

from bench.harness import Result, interleave

__all__ = ["main"]


def _fill_many(path: str, n_traces: int) -> None:
    from tests.store_fixtures import Recorder, fill_store, openstack_trace

    rec = Recorder()
    exp = None
    for i in range(n_traces):
        openstack_trace(rec, error=(i % 50 == 0))
        if (i + 1) % 500 == 0 or i + 1 == n_traces:
            exp = fill_store(path, rec.take(), batch=1024, exporter=exp)
    if exp is not None:
        exp.shutdown()


def _cli(*argv: str) -> Callable[[], object]:
    from os_trace_plugins.cmd._main import main as os_trace

    def run() -> object:
        with contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            code = os_trace(list(argv))
        assert code == 0, argv
        return code
    return run


def _chromium_open(html: str, rounds: int) -> list[float]:
    try:
        from tests.functional.test_html_chromium import CHROMEDRIVER, CHROMIUM, _driver
    except ImportError:
        return []
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        return []
    from selenium.webdriver.support.ui import WebDriverWait
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    driver = _driver(profile)
    samples = []
    try:
        for _ in range(rounds):
            driver.get("about:blank")
            t0 = time.perf_counter()
            driver.get("file://" + html)
            WebDriverWait(driver, 30).until(
                lambda d: d.find_element("tag name", "body").get_attribute(
                    "data-ready") == "1")
            samples.append(time.perf_counter() - t0)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return samples


def _row(name: str, res: Result, budget_ms: float | None) -> str:
    lo, med = res.min / 1000, res.median / 1000
    if budget_ms:
        return f"| {name} | {lo:.1f} | {med:.1f} | {budget_ms:.0f} | {lo / budget_ms:.3f} |"
    return f"| {name} | {lo:.1f} | {med:.1f} | – | – |"


def main(quick: bool = False) -> str:
    from opentelemetry import version as otel_version

    from os_trace_plugins.report._html import render_html
    from os_trace_plugins.report._model import Trace
    from os_trace_plugins.store._exporter import SQLiteSpanExporter
    from os_trace_plugins.store._reader import StoreReader
    from tests.store_fixtures import Recorder, fill_store, openstack_trace, wide_trace

    rounds = 3 if quick else 7
    n_traces = 2000 if quick else 10_000
    tmp = tempfile.mkdtemp(prefix="bench-store-")
    try:
        many = os.path.join(tmp, "many.db")
        t0 = time.perf_counter()
        _fill_many(many, n_traces)
        fill_s = time.perf_counter() - t0
        big = os.path.join(tmp, "big.db")
        rec = Recorder()
        big_id = wide_trace(rec, 5000)
        fill_store(big, rec.take()).shutdown()
        html_path = os.path.join(tmp, "big.html")
        with StoreReader(big) as reader:
            trace = Trace.from_dicts(reader.spans(big_id))
        with open(html_path, "w", encoding="utf-8") as f:
            f.write(render_html(trace))

        # writing: cost per span of one 512-span export into a live store
        rec = Recorder()
        for _ in range(64):
            openstack_trace(rec)
        batch = rec.take()[:512]
        write_store = os.path.join(tmp, "write.db")
        exporter = SQLiteSpanExporter(write_store)
        exporter.export([])  # creates the store

        def export_batch() -> object:
            # fresh ids each time would need new spans; re-exports take the
            # duplicate path, so clear the tables between exports instead
            conn = sqlite3.connect(write_store, isolation_level=None)
            conn.executescript("DELETE FROM spans; DELETE FROM traces; "
                               "DELETE FROM trace_services;")
            conn.close()
            t = time.perf_counter()
            exporter.export(batch)
            return time.perf_counter() - t

        write_samples = [export_batch() for _ in range(rounds + 1)][1:]
        exporter.shutdown()

        cases = {
            f"os-trace list --limit {n_traces} ({n_traces} traces stored)":
                _cli("list", "--store", many, "--limit", str(n_traces)),
            "os-trace list (20 most recent)": _cli("list", "--store", many),
            "os-trace list --service nova-compute --errors --min-duration 0.1":
                _cli("list", "--store", many, "--service", "nova-compute", "--errors",
                     "--min-duration", "0.1", "--limit", str(n_traces)),
            "os-trace show (5,000-span trace, terminal tree)":
                _cli("show", big_id, "--store", big, "--color", "never"),
            "os-trace show --json (5,000 spans)":
                _cli("show", big_id, "--store", big, "--json"),
            "os-trace show --html (5,000 spans, file written)":
                _cli("show", big_id, "--store", big, "--html",
                     os.path.join(tmp, "out.html")),
        }
        budgets = {0: 1000.0, 3: 1000.0}
        results = interleave(cases, inner=1, rounds=rounds)
        opened = _chromium_open(html_path, rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    lines = ["### Embedded store and reports", "",
             "| case | min ms | median ms | budget ms | ratio to budget |",
             "|---|---:|---:|---:|---:|"]
    for i, (name, res) in enumerate(results.items()):
        lines.append(_row(name, res, budgets.get(i)))
    if opened:
        res = Result("chromium", [s * 1e6 for s in opened])
        lines.append(_row("HTML report of 5,000 spans opens in headless Chromium "
                          "(load to rendered)", res, 3000.0))
    else:
        lines.append("| HTML report opens in Chromium | not measured (no Chromium) | | "
                     "3000 | |")
    per_span = [s / len(batch) * 1e6 for s in write_samples]
    lines += ["", "| writing | min µs/span | median µs/span |", "|---|---:|---:|",
              f"| SQLiteSpanExporter.export, 512-span batch (background thread) | "
              f"{min(per_span):.1f} | {sorted(per_span)[len(per_span) // 2]:.1f} |", ""]
    lines += [
        f"- filling {n_traces} traces ({n_traces * 8} spans) through the exporter "
        f"took {fill_s:.1f} s ({n_traces * 8 / fill_s:,.0f} spans/s, including span "
        f"creation)",
        "- list and show run the real `os-trace` command in-process (argument "
        "parsing, read-only open, query, formatting), output discarded",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, OpenTelemetry "
        f"SDK {otel_version.__version__}, {platform.system()} {platform.release()}",
        f"- rounds: {rounds}{' (quick)' if quick else ''}",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(main(quick="--quick" in sys.argv))
