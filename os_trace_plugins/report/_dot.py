"""``os-trace show --dot FILE``: the span tree as a Graphviz digraph.

Nodes are spans (name, service, duration), filled by service colour, error
spans outlined in red; edges go parent to child.  ``--render`` runs ``dot``
(when installed) to produce ``FILE.svg`` next to it.
"""

from __future__ import annotations

import shutil
import subprocess

from os_trace_plugins.report._model import Trace
from os_trace_plugins.report._text import format_ms

__all__ = ["render_dot", "render_svg", "PALETTE"]

#: Service colours shared with the HTML report.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#edc948", "#76b7b2",
           "#ff9da7", "#9c755f", "#bab0ac", "#e15759")


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(trace: Trace) -> str:
    colours = {svc: PALETTE[i % len(PALETTE)] for i, svc in enumerate(trace.services)}
    lines = [f"digraph {_q('trace ' + trace.trace_id)} {{",
             "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", '
             'fontsize=10];',
             f"  label={_q(f'trace {trace.trace_id} ({format_ms(trace.duration_ns)})')};"]
    for s in trace.spans:
        label = f"{s.name}\n{s.service} {s.kind}\n{format_ms(s.duration_ns)}"
        extra = ', color="#d62728", penwidth=3' if s.error else ""
        lines.append(f"  {_q(s.span_id)} [label={_q(label)}, "
                     f"fillcolor={_q(colours[s.service] + '55')}{extra}];")
    for s in trace.spans:
        for c in s.children:
            lines.append(f"  {_q(s.span_id)} -> {_q(c.span_id)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(dot_path: str, timeout: float = 60.0) -> str:
    """Run Graphviz on ``dot_path``; return the SVG path. RuntimeError if it cannot."""
    exe = shutil.which("dot")
    if not exe:
        raise RuntimeError("Graphviz 'dot' is not installed (apt-get install graphviz); "
                           f"the DOT file {dot_path} was written")
    out = dot_path + ".svg"
    proc = subprocess.run([exe, "-Tsvg", dot_path, "-o", out], capture_output=True,
                          text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"dot failed: {proc.stderr.strip().splitlines()[-1:]}")
    return out
