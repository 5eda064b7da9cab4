"""The terminal tree of ``os-trace show``.

One line per span, indented by depth with tree guides::

    POST /servers  nova-api SERVER http  +0.0ms 120.4ms
    └─ build_instance  nova-api CLIENT rpc  +1.2ms 110.0ms

Errors are marked ``ERROR: <message>`` (red on a terminal); colours (service
names, dimmed offsets) only when ``color`` is true, i.e. on a tty.
"""

from __future__ import annotations

from os_trace_plugins.report._model import Span, Trace

__all__ = ["render_text", "format_ms"]

_RESET = "\033[0m"
_RED = "\033[1;31m"
_DIM = "\033[2m"
_PALETTE = ("\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m", "\033[96m",
            "\033[93m", "\033[95m")


def format_ms(ns: int) -> str:
    ms = ns / 1e6
    if ms >= 1000:
        return f"{ms / 1000:.2f}s"
    if ms >= 10:
        return f"{ms:.1f}ms"
    return f"{ms:.2f}ms"


def _header(trace: Trace) -> str:
    n_err = len(trace.errors)
    err = f", {n_err} error{'s' if n_err != 1 else ''}" if n_err else ""
    n_svc = len(trace.services)
    return (f"trace {trace.trace_id}  {len(trace.spans)} spans, "
            f"{n_svc} service{'s' if n_svc != 1 else ''}, "
            f"{format_ms(trace.duration_ns)}{err}")


def render_text(trace: Trace, color: bool = False) -> str:
    """The whole tree as text (ending with a newline)."""
    colours = {svc: _PALETTE[i % len(_PALETTE)] for i, svc in enumerate(trace.services)}
    lines = [_header(trace)]
    # guides[d] is True when the ancestor at depth d has later siblings
    guides: list[bool] = []
    last_child: set[int] = set()
    for s in trace.spans:
        if s.children:
            last_child.add(id(s.children[-1]))
    for s in trace.spans:
        depth = s.depth
        del guides[depth:]
        is_last = id(s) in last_child or depth == 0
        prefix = "".join("│  " if more else "   " for more in guides[1:depth])
        if depth:
            prefix += "└─ " if is_last else "├─ "
        guides.append(not is_last)
        lines.append(prefix + _line(s, trace.start_ns, colours.get(s.service, ""), color))
    return "\n".join(lines) + "\n"


def _line(s: Span, t0: int, svc_colour: str, color: bool) -> str:
    service = f"{svc_colour}{s.service}{_RESET}" if color else s.service
    offset = f"+{format_ms(s.start_ns - t0)}"
    if color:
        offset = f"{_DIM}{offset}{_RESET}"
    kind = s.kind if s.category == "other" else f"{s.kind} {s.category}"
    text = f"{s.name}  {service} {kind}  {offset} {format_ms(s.duration_ns)}"
    if s.error:
        err = f"ERROR: {s.error_text()}"
        text += f"  {_RED}{err}{_RESET}" if color else f"  {err}"
    return text
