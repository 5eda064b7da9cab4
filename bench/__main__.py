"""``python -m bench [AREA ...] [--quick]``: run the side-by-side benchmarks.

Every ``bench/bench_<area>.py`` module exposes ``main(quick: bool) -> str``
returning markdown; the tables are printed and, with ``--write``, saved as
``docs/bench/<area>.md`` (assembled into docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("areas", nargs="*", help="areas to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (smoke run)")
    parser.add_argument("--callgrind", action="store_true",
                        help="instruction counts instead of times (areas that have them)")
    parser.add_argument("--write", action="store_true",
                        help="write docs/bench/<area>.md")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent
    found = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)])
                   if m.name.startswith("bench_"))
    areas = args.areas or found
    for area in areas:
        if area not in found:
            print(f"unknown area {area!r}; known: {', '.join(found)}", file=sys.stderr)
            return 2
        module = importlib.import_module(f"bench.bench_{area}")
        if args.callgrind and not hasattr(module, "callgrind"):
            print(f"area {area!r} has no instruction counts; timing it", file=sys.stderr)
        text = (module.callgrind() if args.callgrind and hasattr(module, "callgrind")
                else module.main(quick=args.quick))
        print(text)
        if args.write:
            out = here.parent / "docs" / "bench" / f"{area}.md"
            out.parent.mkdir(parents=True, exist_ok=True)
            cmd = f"python -m bench {area}" + (" --quick" if args.quick else "")
            out.write_text(f"<!-- produced by: {cmd} -->\n{text}", encoding="utf-8")
    if args.write:
        assemble(here.parent / "docs")
    return 0


HEADER = """# Benchmarks

Produced by the project's own benchmark, `python -m bench [AREA ...] --write` (tox env
`bench`), on the project's development machine: 2 cores, shared with other work, so every
figure comes from interleaved rounds in one run, reported as the minimum per-operation time
and as ratios to the uninstrumented baseline of the same run. Each section below names the
command that produced it; rerun it on your hardware before quoting absolute numbers.

"""


def assemble(docs: Path) -> None:
    """Rebuild docs/benchmarks.md from the per-area files in docs/bench/."""
    parts = [HEADER]
    for path in sorted((docs / "bench").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        if "\n## " not in "\n" + text:  # give every area a section heading
            text = f"## {path.stem}\n\n{text}"
        parts.append(text + "\n")
    (docs / "benchmarks.md").write_text("".join(parts), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
