"""``os-trace show --html FILE``: one self-contained HTML file.

No CDN, no network: the CSS and JavaScript (``report/assets/``) and the
trace itself (the JSON document of :mod:`json_report`) are inlined, so the
file opens on an air-gapped host.  The page shows a Jaeger-like waterfall
(one row per span, bar offset by start, width by duration, colour by
service), collapsible subtrees, a search box, a details panel (attributes,
events, errors, resource) and the time per service and per kind.
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources
from typing import Any

from os_trace_plugins.report._dot import PALETTE
from os_trace_plugins.report._json_report import to_document
from os_trace_plugins.report._model import Trace
from os_trace_plugins.report._text import format_ms

__all__ = ["render_html"]


@cache
def _asset(name: str) -> str:
    return resources.files("os_trace_plugins.report").joinpath("assets").joinpath(name).read_text(
        encoding="utf-8")


def _data(trace: Trace) -> str:
    doc: dict[str, Any] = to_document(trace, resources=False)
    doc["palette"] = list(PALETTE)
    doc["resources"] = {}
    for s in trace.spans:  # one resource per service is enough for the panel
        doc["resources"].setdefault(s.service, s.resource)
    # "<" only occurs inside JSON strings, where \u003c is the same character:
    # no "</script>" can end the data block early
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def render_html(trace: Trace) -> str:
    n_err = len(trace.errors)
    title = f"{trace.roots[0].name} · trace {trace.trace_id}"
    err = f'<span class="err">{n_err} error{"s" if n_err != 1 else ""}</span>' if n_err else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_asset("report.css")}</style></head>
<body>
<header><h1>{html.escape(trace.roots[0].name)}</h1>
<span class="meta">trace {trace.trace_id}</span>
<span class="meta">{format_ms(trace.duration_ns)}</span>
<span class="meta">{len(trace.spans)} spans</span>
<span class="meta">{len(trace.services)} services: {html.escape(", ".join(trace.services))}</span>
{err}</header>
<div id="toolbar">
<input id="search" type="search" placeholder="Search: name, service, attribute…">
<button id="collapse-all">Collapse all</button><button id="expand-all">Expand all</button>
<span id="hits"></span></div>
<div id="summary"></div>
<div id="main"><div id="waterfall"></div><aside id="details"></aside></div>
<script id="trace-data" type="application/json">{_data(trace)}</script>
<script>{_asset("report.js")}</script>
</body></html>
"""
