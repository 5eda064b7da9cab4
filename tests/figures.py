"""Figures a test reports for docs/reliability.md, printed at the end of the run.

A reliability test proves a promise with numbers (calls made, spans seen,
spans lost).  ``report()`` records them; the ``pytest_terminal_summary`` hook
in tests/conftest.py prints every recorded line under one heading, so the
README's test command shows the figures that docs/reliability.md quotes
whether or not pytest captures output.  Each line is also appended to
``$OS_TRACE_FIGURES`` (a file) when that variable is set.
"""

from __future__ import annotations

import os

__all__ = ["FIGURES", "report"]

Value = int | float | str

# (part, case, {name: value}) in the order the tests reported them
FIGURES: list[tuple[str, str, dict[str, Value]]] = []


def _fmt(value: Value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def line(part: str, case: str, values: dict[str, Value]) -> str:
    body = ", ".join(f"{k}: {_fmt(v)}" for k, v in values.items())
    return f"[{part}] {case}: {body}"


def report(part: str, case: str, **values: Value) -> None:
    """Record one figure line, e.g. ``report("1 collector", "refusing",
    calls=2000, spans_seen=2000, spans_lost=0)``."""
    FIGURES.append((part, case, dict(values)))
    path = os.environ.get("OS_TRACE_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line(part, case, values) + "\n")
