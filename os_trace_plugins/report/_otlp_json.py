"""Read spans from an OTLP/JSON file (``os-trace show --otlp-json FILE``).

Accepts the OTLP/JSON encoding of ``ExportTraceServiceRequest`` (what an
OpenTelemetry Collector's file exporter, ``otlp-http`` JSON payloads and many
backends' "download trace" produce): one JSON document, or JSON lines with one
request per line.  Ids are hex as OTLP/JSON requires (base64, the generic
protobuf JSON mapping, is accepted too); enum kinds may be numbers or names.
Anything else is a :class:`~os_trace_plugins.report._model.ReportError`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from os_trace_plugins.report._model import ReportError

__all__ = ["load_otlp_json", "parse_otlp", "trace_ids"]

_KINDS = {0: "INTERNAL", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER",
          5: "CONSUMER"}
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


def _id(value: Any, size: int, what: str) -> str:
    text = str(value or "")
    if len(text) == size * 2 and all(c in "0123456789abcdefABCDEF" for c in text):
        return text.lower()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise ReportError(f"bad {what} {text!r} (want {size * 2} hex digits)")
    return raw.hex()


def _value(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in v:
            return v[key]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [_value(x) for x in (v["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in v:
        return _attrs((v["kvlistValue"] or {}).get("values", []))
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def _attrs(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {str(kv.get("key")): _value(kv.get("value")) for kv in items
            if isinstance(kv, dict) and "key" in kv}


def _enum(value: Any, table: dict[int, str], prefix: str) -> str:
    if isinstance(value, int):
        return table.get(value, table[0])
    text = str(value or "")
    if text.startswith(prefix):
        text = text[len(prefix):]
    return text if text in table.values() else ("INTERNAL" if prefix == "SPAN_KIND_"
                                                else "UNSET")


def _span(s: dict[str, Any], service: str, resource: dict[str, Any],
          scope: str | None) -> dict[str, Any]:
    status = s.get("status") or {}
    parent = s.get("parentSpanId") or None
    start = int(s.get("startTimeUnixNano") or 0)
    return {
        "trace_id": _id(s.get("traceId"), 16, "traceId"),
        "span_id": _id(s.get("spanId"), 8, "spanId"),
        "parent_id": _id(parent, 8, "parentSpanId") if parent else None,
        "name": str(s.get("name", "")), "service": service,
        "kind": _enum(s.get("kind", 1), _KINDS, "SPAN_KIND_"),
        "start_ns": start, "end_ns": int(s.get("endTimeUnixNano") or start),
        "status_code": _enum(status.get("code", 0), _STATUS, "STATUS_CODE_"),
        "status_message": status.get("message") or None,
        "attributes": _attrs(s.get("attributes")),
        "events": [{"name": e.get("name", ""), "time_ns": int(e.get("timeUnixNano") or 0),
                    "attributes": _attrs(e.get("attributes"))}
                   for e in s.get("events") or []],
        "links": [{"trace_id": _id(li.get("traceId"), 16, "traceId"),
                   "span_id": _id(li.get("spanId"), 8, "spanId"),
                   "attributes": _attrs(li.get("attributes"))}
                  for li in s.get("links") or []],
        "resource": resource, "scope": scope,
    }


def parse_otlp(doc: Any) -> list[dict[str, Any]]:
    """Spans (as dicts, see report.model) of one ExportTraceServiceRequest."""
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceSpans"), list):
        raise ReportError("not OTLP/JSON trace data (no resourceSpans list)")
    out = []
    try:
        for rs in doc["resourceSpans"]:
            resource = _attrs((rs.get("resource") or {}).get("attributes"))
            service = str(resource.get("service.name") or "unknown_service")
            for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
                scope = (ss.get("scope") or ss.get("instrumentationLibrary") or {})
                for s in ss.get("spans") or []:
                    out.append(_span(s, service, resource, scope.get("name")))
    except (AttributeError, TypeError, ValueError) as exc:
        raise ReportError(f"malformed OTLP/JSON trace data ({exc})") from None
    return out


def load_otlp_json(path: str) -> list[dict[str, Any]]:
    """Every span in the file; ReportError for a file that is not OTLP/JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read {path}: {exc}") from None
    try:
        docs = [json.loads(text)]
    except ValueError:
        try:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise ReportError(f"{path} is not JSON ({exc})") from None
    spans: list[dict[str, Any]] = []
    for doc in docs:
        try:
            spans.extend(parse_otlp(doc))
        except ReportError as exc:
            raise ReportError(f"{path}: {exc}") from None
    if not spans:
        raise ReportError(f"{path} holds no spans")
    return spans


def trace_ids(spans: list[dict[str, Any]]) -> list[str]:
    """Trace ids in the order they first appear."""
    return list(dict.fromkeys(s["trace_id"] for s in spans))
