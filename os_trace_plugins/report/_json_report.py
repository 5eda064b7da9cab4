"""``os-trace show --json``: the trace as a stable JSON document.

Schema ``os-trace.trace/1`` (documented in docs/reports.md; fields are only
ever added within a version)::

    {"schema": "os-trace.trace/1", "trace_id": hex32,
     "start_unix_nano": int, "duration_ms": float, "span_count": int,
     "error_count": int, "services": [str],
     "summary": {"by_service": {name: {"spans", "self_ms", "total_ms", "errors"}},
                 "by_kind": {rpc|db|driver|http|other: {...}}},
     "spans": [{"span_id", "parent_span_id" (null for a root), "depth",
                "name", "service", "kind", "category", "start_unix_nano",
                "end_unix_nano", "offset_ms", "duration_ms", "self_ms",
                "status": {"code": "UNSET"|"OK"|"ERROR", "message"},
                "attributes": {}, "events": [{"name", "time_unix_nano",
                "attributes"}], "links": [{"trace_id", "span_id",
                "attributes"}], "resource": {}}]}

``spans`` is in tree order (depth-first, children by start time).
"""

from __future__ import annotations

import json
from typing import Any

from os_trace_plugins.report._model import Trace

__all__ = ["SCHEMA", "to_document", "render_json"]

SCHEMA = "os-trace.trace/1"


def to_document(trace: Trace, resources: bool = True) -> dict[str, Any]:
    t0 = trace.start_ns
    spans = []
    for s in trace.spans:
        item: dict[str, Any] = {
            "span_id": s.span_id, "parent_span_id": s.parent_id, "depth": s.depth,
            "name": s.name, "service": s.service, "kind": s.kind, "category": s.category,
            "start_unix_nano": s.start_ns, "end_unix_nano": s.end_ns,
            "offset_ms": round((s.start_ns - t0) / 1e6, 3),
            "duration_ms": round(s.duration_ns / 1e6, 3),
            "self_ms": round(s.self_ns / 1e6, 3),
            "status": {"code": s.status_code, "message": s.status_message},
            "attributes": s.attributes,
            "events": [{"name": e.get("name", ""), "time_unix_nano": e.get("time_ns", 0),
                        "attributes": e.get("attributes") or {}} for e in s.events],
            "links": s.links,
        }
        if resources:
            item["resource"] = s.resource
        spans.append(item)
    return {
        "schema": SCHEMA, "trace_id": trace.trace_id, "start_unix_nano": t0,
        "duration_ms": round(trace.duration_ns / 1e6, 3), "span_count": len(trace.spans),
        "error_count": len(trace.errors), "services": trace.services,
        "summary": trace.summary(), "spans": spans,
    }


def render_json(trace: Trace) -> str:
    return json.dumps(to_document(trace), indent=2, ensure_ascii=False) + "\n"
