"""The trace tree every report renders.

A :class:`Trace` holds :class:`Span` objects linked parent to child, in
depth-first order with children by start time.  A span whose parent was not
exported (a service outside the store, a dropped batch) becomes an extra root
so nothing is hidden.  :func:`category` classifies a span by its attributes
into the kinds the summary adds up: ``rpc`` (rpc.method or messaging.system),
``db`` (db.system.name), ``driver`` (openstack.driver.* or code.*), ``http``
(http.*), else ``other``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ReportError", "Span", "Trace", "category", "CATEGORIES"]

CATEGORIES = ("rpc", "db", "driver", "http", "other")


class ReportError(Exception):
    """Input a report cannot be built from; the message is one line."""


def category(attributes: dict[str, Any]) -> str:
    """rpc, db, driver, http or other, from a span's attributes."""
    keys = attributes.keys()
    if "rpc.method" in attributes or "messaging.system" in attributes:
        return "rpc"
    if "db.system.name" in attributes or "db.system" in attributes:
        return "db"
    if any(k.startswith("openstack.driver.") or k.startswith("code.") for k in keys):
        return "driver"
    if any(k.startswith("http.") for k in keys):
        return "http"
    return "other"


@dataclass(eq=False)
class Span:
    """One span of a report (times in Unix nanoseconds)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    service: str
    kind: str
    start_ns: int
    end_ns: int
    status_code: str = "UNSET"
    status_message: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str | None = None
    children: list[Span] = field(default_factory=list, repr=False)
    depth: int = 0
    category: str = "other"
    self_ns: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Span:
        attrs = dict(d.get("attributes") or {})
        # one process hosting several services (the in-process demo) names the
        # service per span; otherwise the resource's service.name serves
        service = attrs.get("service.name") or d.get("service") or "unknown_service"
        span = cls(trace_id=d["trace_id"], span_id=d["span_id"],
                   parent_id=d.get("parent_id") or None, name=str(d.get("name", "")),
                   service=str(service), kind=str(d.get("kind") or "INTERNAL"),
                   start_ns=int(d["start_ns"]), end_ns=int(d.get("end_ns") or d["start_ns"]),
                   status_code=str(d.get("status_code") or "UNSET"),
                   status_message=d.get("status_message") or None, attributes=attrs,
                   events=list(d.get("events") or []), links=list(d.get("links") or []),
                   resource=dict(d.get("resource") or {}), scope=d.get("scope"))
        span.end_ns = max(span.end_ns, span.start_ns)
        span.category = category(attrs)
        return span

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def error(self) -> bool:
        return self.status_code == "ERROR"

    def error_text(self) -> str:
        """The status message, else the exception event's type and message."""
        if self.status_message:
            return self.status_message
        for ev in self.events:
            if ev.get("name") == "exception":
                a = ev.get("attributes") or {}
                return f"{a.get('exception.type', '')}: {a.get('exception.message', '')}"
        return str(self.attributes.get("error.type", "error"))


class Trace:
    """The spans of one trace as a forest (normally one root)."""

    def __init__(self, spans: Iterable[Span]) -> None:
        self.spans: list[Span] = []
        by_id: dict[str, Span] = {}
        for s in spans:
            if s.span_id not in by_id:
                by_id[s.span_id] = s
        if not by_id:
            raise ReportError("the trace has no spans")
        roots: list[Span] = []
        for s in by_id.values():
            parent = by_id.get(s.parent_id) if s.parent_id else None
            if parent is None or parent is s:
                roots.append(s)
            else:
                parent.children.append(s)
        roots.sort(key=lambda s: (s.start_ns, s.name))
        self.roots = roots
        # depth-first order, iterative (a 5000-deep chain must not recurse)
        stack = [(r, 0) for r in reversed(roots)]
        seen: set[int] = set()
        while stack:
            s, depth = stack.pop()
            if id(s) in seen:  # a parent cycle in bad input
                continue
            seen.add(id(s))
            s.depth = depth
            self.spans.append(s)
            s.children.sort(key=lambda c: (c.start_ns, c.name))
            stack.extend((c, depth + 1) for c in reversed(s.children))
            s.self_ns = _self_time(s)
        for s in by_id.values():  # caught in a parent cycle: shown flat, as roots
            if id(s) not in seen:
                s.children, s.depth, s.self_ns = [], 0, s.duration_ns
                roots.append(s)
                self.spans.append(s)
        self.trace_id = self.roots[0].trace_id
        self.start_ns = min(s.start_ns for s in self.spans)
        self.end_ns = max(s.end_ns for s in self.spans)

    @classmethod
    def from_dicts(cls, rows: Iterable[dict[str, Any]]) -> Trace:
        return cls(Span.from_dict(r) for r in rows)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def services(self) -> list[str]:
        return sorted({s.service for s in self.spans})

    @property
    def errors(self) -> list[Span]:
        return [s for s in self.spans if s.error]

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """Time per service and per kind: self time (without children) and span count.

        Self times add up to the time covered by the trace's spans, so the
        shares are comparable; ``total_ms`` (with children) is given too.
        """
        out: dict[str, dict[str, dict[str, float]]] = {"by_service": {}, "by_kind": {}}
        for s in self.spans:
            for table, key in (("by_service", s.service), ("by_kind", s.category)):
                row = out[table].setdefault(key, {"spans": 0, "self_ms": 0.0,
                                                  "total_ms": 0.0, "errors": 0})
                row["spans"] += 1
                row["self_ms"] += s.self_ns / 1e6
                row["total_ms"] += s.duration_ns / 1e6
                row["errors"] += 1 if s.error else 0
        for rows in out.values():
            for row in rows.values():
                row["self_ms"] = round(row["self_ms"], 3)
                row["total_ms"] = round(row["total_ms"], 3)
        return out


def _self_time(span: Span) -> int:
    """Duration minus the union of the children's intervals clipped to the span."""
    if not span.children:
        return span.duration_ns
    covered = 0
    cur_start = cur_end = None
    for c in sorted(span.children, key=lambda c: c.start_ns):
        a, b = max(c.start_ns, span.start_ns), min(c.end_ns, span.end_ns)
        if b <= a:
            continue
        if cur_end is None or a > cur_end:
            if cur_end is not None and cur_start is not None:
                covered += cur_end - cur_start
            cur_start, cur_end = a, b
        else:
            cur_end = max(cur_end, b)
    if cur_end is not None and cur_start is not None:
        covered += cur_end - cur_start
    return max(0, span.duration_ns - covered)
