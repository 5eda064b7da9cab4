"""CPU instructions per operation, counted by ``valgrind --tool=callgrind``.

Why: on a shared 2-core machine timings of a few microseconds drift by 2x
from run to run; instruction counts do not.  Each case runs in its own
process under callgrind twice, ``short`` and ``long`` operations; the
difference divided by ``long - short`` is the per-operation count, so
interpreter start-up and imports cancel out.

A bench module opts in by handling ``python -m bench.bench_<area> --callgrind
CASE N`` (run the case's setup, then the case N times) through :func:`run_case`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["available", "instructions", "run_case", "table"]

_COLLECTED = re.compile(r"Collected : (\d+)")


def available() -> bool:
    return shutil.which("valgrind") is not None


def _count(module: str, case: str, n: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-m", module, "--callgrind", case, str(n)],
        capture_output=True, text=True, timeout=1800, check=False,
        env=dict(os.environ, PYTHONHASHSEED="0"))  # same dict layouts in both runs
    found = _COLLECTED.search(out.stderr)
    if out.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind run of {case!r} failed: {out.stderr[-2000:]}")
    return int(found.group(1))


def instructions(module: str, cases: Iterable[str], short: int = 200,
                 long: int = 2200) -> dict[str, float]:
    """Instructions per operation of each case of ``module``."""
    return {case: (_count(module, case, long) - _count(module, case, short))
            / (long - short) for case in cases}


def run_case(cases: dict[str, Callable[[], Any]],
             setup: dict[str, Callable[[], Any]], argv: list[str]) -> None:
    """The ``--callgrind CASE N`` entry of a bench module."""
    name, n = argv[0], int(argv[1])
    if name in setup:
        setup[name]()
    fn = cases[name]
    for _ in range(n):
        fn()


def table(counts: dict[str, float], baseline: str, command: str, short: int = 200,
          long: int = 2200) -> str:
    base = counts[baseline]
    rows = ["| case | instructions/op | added | ratio |", "|---|---:|---:|---:|"]
    for name, value in counts.items():
        ratio = f"{value / base:.2f}" if base >= 1000 else "n/a"  # below the noise
        rows.append(f"| {name} | {value:,.0f} | {value - base:+,.0f} | {ratio} |")
    return ("\n#### CPU instructions per operation (callgrind)\n\n" + "\n".join(rows)
            + f"\n\n- `{command}`: each case in its own process, {long} minus {short} "
              "operations, so start-up cancels; far steadier than the times above, "
              "but whole-process counts keep a noise of a few hundred instructions "
              "per operation, so rows below ~1,000 read as 'about nothing'\n")
