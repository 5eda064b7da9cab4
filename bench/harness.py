"""Interleaved micro-benchmark harness shared by every bench module.

These machines are noisy: each round runs every case once, in a rotated
order, ``inner`` times in a tight loop; a case's figure is the minimum (and
the median) over rounds of the per-operation time.  Ratios are against a
named baseline case measured in the same run.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Result", "interleave", "table", "added"]

Timer = Callable[[], float]


@dataclass
class Result:
    """Per-operation samples of one case, in microseconds."""

    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def interleave(cases: dict[str, Callable[[], object]], inner: int = 1000,
               rounds: int = 15, timer: Timer = time.perf_counter,
               setup: dict[str, Callable[[], object]] | None = None,
               teardown: dict[str, Callable[[], object]] | None = None,
               ) -> dict[str, Result]:
    """Run every case ``inner`` times per round, rounds interleaved.

    ``setup[name]`` / ``teardown[name]`` run around a case's turn in each
    round, outside the timed loop (to install or remove instrumentation).
    """
    results = {name: Result(name) for name in cases}
    names = list(cases)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            if setup and name in setup:
                setup[name]()
            fn = cases[name]
            fn()  # warm
            gc.collect()
            gc.disable()
            try:
                t0 = timer()
                for _ in range(inner):
                    fn()
                t1 = timer()
            finally:
                gc.enable()
                if teardown and name in teardown:
                    teardown[name]()
            results[name].samples.append((t1 - t0) * 1e6 / inner)
    return results


def added(results: dict[str, Result], name: str, baseline: str) -> float:
    """Microseconds ``name`` adds over ``baseline`` (by minimum)."""
    return results[name].min - results[baseline].min


def table(title: str, results: dict[str, Result], baseline: str,
          floor: str | None = None, notes: Sequence[str] = ()) -> str:
    """A markdown table: min and median µs/op, added µs and ratios."""
    base = results[baseline].min
    lines = [f"### {title}", ""]
    head = "| case | min µs/op | median µs/op | added µs | ratio to baseline |"
    sep = "|---|---:|---:|---:|---:|"
    if floor:
        head += " added / floor's added |"
        sep += "---:|"
    lines += [head, sep]
    floor_added = results[floor].min - base if floor else 0.0
    for name, res in results.items():
        row = (f"| {name} | {res.min:.2f} | {res.median:.2f} | "
               f"{res.min - base:+.2f} | {res.min / base:.3f} |")
        if floor:
            ratio = (res.min - base) / floor_added if floor_added > 0 else float("nan")
            row += f" {ratio:.2f} |"
        lines.append(row)
    lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
