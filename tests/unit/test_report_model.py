"""The trace tree: order, depth, orphans, self time, kinds, summary."""

from __future__ import annotations

import unittest
from typing import Any

from os_trace_plugins.report._model import ReportError, Trace, category


def span(sid: str, parent: str | None, start: int, end: int, name: str = "",
         service: str = "svc", **attrs: Any) -> dict[str, Any]:
    return {"trace_id": "ab" * 16, "span_id": sid, "parent_id": parent,
            "name": name or sid, "service": service, "kind": "INTERNAL",
            "start_ns": start * 1_000_000, "end_ns": end * 1_000_000,
            "attributes": attrs}


class CategoryTest(unittest.TestCase):
    def test_kinds_from_attributes(self) -> None:
        self.assertEqual(category({"rpc.method": "x"}), "rpc")
        self.assertEqual(category({"messaging.system": "rabbitmq"}), "rpc")
        self.assertEqual(category({"db.system.name": "postgresql"}), "db")
        self.assertEqual(category({"openstack.driver.name": "libvirt"}), "driver")
        self.assertEqual(category({"code.function.name": "spawn"}), "driver")
        self.assertEqual(category({"http.request.method": "GET"}), "http")
        self.assertEqual(category({"foo": 1}), "other")
        # rpc wins over http when a span has both
        self.assertEqual(category({"rpc.method": "x", "http.route": "/"}), "rpc")


class TreeTest(unittest.TestCase):
    def test_depth_first_children_by_start(self) -> None:
        t = Trace.from_dicts([
            span("c2", "r", 50, 60), span("r", None, 0, 100), span("c1", "r", 10, 40),
            span("g1", "c1", 20, 30)])
        self.assertEqual([(s.span_id, s.depth) for s in t.spans],
                         [("r", 0), ("c1", 1), ("g1", 2), ("c2", 1)])
        self.assertEqual(t.duration_ns, 100_000_000)

    def test_orphans_become_roots_and_nothing_is_lost(self) -> None:
        t = Trace.from_dicts([span("r", None, 0, 100), span("o", "missing", 5, 6),
                              span("oc", "o", 5, 6)])
        self.assertEqual([s.span_id for s in t.roots], ["r", "o"])
        self.assertEqual(len(t.spans), 3)

    def test_parent_cycle_does_not_hang(self) -> None:
        t = Trace.from_dicts([span("a", "b", 0, 1), span("b", "a", 0, 1),
                              span("r", None, 0, 2)])
        self.assertEqual([s.span_id for s in t.spans], ["r", "a", "b"])

    def test_self_time_subtracts_the_union_of_children(self) -> None:
        t = Trace.from_dicts([
            span("r", None, 0, 100), span("a", "r", 10, 50), span("b", "r", 30, 60),
            span("c", "r", 90, 150)])  # c overruns its parent: clipped
        self_ms = {s.span_id: s.self_ns / 1e6 for s in t.spans}
        self.assertEqual(self_ms["r"], 100 - 50 - 10)
        self.assertEqual(self_ms["a"], 40)

    def test_summary_by_service_and_kind(self) -> None:
        t = Trace.from_dicts([
            span("r", None, 0, 100, service="api", **{"http.route": "/"}),
            span("q", "r", 10, 30, service="api", **{"db.system.name": "sqlite"}),
            span("s", "r", 40, 90, service="conductor", **{"rpc.method": "m"})])
        summary = t.summary()
        self.assertEqual(summary["by_service"]["api"],
                         {"spans": 2, "self_ms": 50.0, "total_ms": 120.0, "errors": 0})
        self.assertEqual(summary["by_service"]["conductor"]["self_ms"], 50.0)
        self.assertEqual(set(summary["by_kind"]), {"http", "db", "rpc"})
        self.assertEqual(summary["by_kind"]["db"]["self_ms"], 20.0)

    def test_service_name_attribute_overrides_resource(self) -> None:
        t = Trace.from_dicts([span("r", None, 0, 1, service="demo",
                                   **{"service.name": "demo-api"})])
        self.assertEqual(t.services, ["demo-api"])

    def test_empty_is_an_error(self) -> None:
        with self.assertRaises(ReportError):
            Trace.from_dicts([])

    def test_error_text_from_status_or_exception_event(self) -> None:
        d = span("r", None, 0, 1)
        d.update(status_code="ERROR", events=[{"name": "exception", "attributes": {
            "exception.type": "ValueError", "exception.message": "bad"}}])
        t = Trace.from_dicts([d])
        self.assertEqual(t.spans[0].error_text(), "ValueError: bad")
        self.assertEqual(len(t.errors), 1)
