"""Text tree, JSON schema, DOT and HTML output of one trace."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import unittest

from os_trace_plugins.report._dot import render_dot
from os_trace_plugins.report._html import render_html
from os_trace_plugins.report._json_report import SCHEMA, render_json
from os_trace_plugins.report._model import Trace
from os_trace_plugins.report._text import render_text
from os_trace_plugins.store._exporter import span_row
from os_trace_plugins.store._reader import StoreReader
from tests.store_fixtures import Recorder, fill_store, openstack_trace, wide_trace

_KEYS = ("trace_id", "span_id", "parent_id", "service", "name", "kind", "start_ns",
         "end_ns", "status_code", "status_message")


def trace_of(spans: list) -> Trace:  # type: ignore[type-arg]
    rows = []
    for s in spans:
        r = span_row(s)
        d = dict(zip(_KEYS, r[:10], strict=True))
        d.update(attributes=json.loads(r[10]), events=json.loads(r[11]),
                 links=json.loads(r[12]), resource=json.loads(r[13]))
        rows.append(d)
    return Trace.from_dicts(rows)


class RenderersTest(unittest.TestCase):
    def setUp(self) -> None:
        rec = Recorder()
        self.trace_id = openstack_trace(rec)
        self.trace = trace_of(rec.take())

    def test_text_tree(self) -> None:
        out = render_text(self.trace, color=False)
        lines = out.splitlines()
        self.assertIn(f"trace {self.trace_id}  8 spans, 3 services", lines[0])
        self.assertIn("1 error", lines[0])
        self.assertTrue(lines[1].startswith("POST /v2.1/servers  nova-api SERVER http"))
        self.assertTrue(lines[2].startswith("└─ conductor.build_instances  nova-api CLIENT rpc"))
        self.assertTrue(lines[3].startswith("   └─ build_instances  nova-conductor SERVER"))
        self.assertTrue(lines[4].startswith("      ├─ SELECT instances  nova-conductor "
                                            "CLIENT db"))
        drv = next(line for line in lines if "FakeDriver.spawn" in line)
        self.assertIn("INTERNAL driver", drv)
        self.assertTrue(drv.endswith("ERROR: hypervisor unreachable"))
        self.assertTrue(lines[-1].startswith("         └─ compute.post_build process"))
        self.assertNotIn("\033", out)
        self.assertRegex(lines[1], r"\+0\.00ms \d+\.\d+ms$")

    def test_text_colours_only_when_asked(self) -> None:
        out = render_text(self.trace, color=True)
        self.assertIn("\033[1;31mERROR: hypervisor unreachable\033[0m", out)

    def test_json_schema(self) -> None:
        doc = json.loads(render_json(self.trace))
        self.assertEqual(doc["schema"], SCHEMA)
        self.assertEqual(set(doc), {"schema", "trace_id", "start_unix_nano", "duration_ms",
                                    "span_count", "error_count", "services", "summary",
                                    "spans"})
        self.assertEqual((doc["trace_id"], doc["span_count"], doc["error_count"]),
                         (self.trace_id, 8, 1))
        first = doc["spans"][0]
        self.assertEqual(set(first), {
            "span_id", "parent_span_id", "depth", "name", "service", "kind", "category",
            "start_unix_nano", "end_unix_nano", "offset_ms", "duration_ms", "self_ms",
            "status", "attributes", "events", "links", "resource"})
        self.assertIsNone(first["parent_span_id"])
        self.assertEqual(first["offset_ms"], 0)
        ids = {s["span_id"] for s in doc["spans"]}
        self.assertTrue(all(s["parent_span_id"] in ids for s in doc["spans"][1:]))
        self.assertEqual(set(doc["summary"]["by_kind"]), {"http", "rpc", "db", "driver"})
        drv = next(s for s in doc["spans"] if s["name"] == "FakeDriver.spawn")
        self.assertEqual(drv["status"], {"code": "ERROR",
                                         "message": "hypervisor unreachable"})

    def test_dot(self) -> None:
        out = render_dot(self.trace)
        self.assertTrue(out.startswith(f'digraph "trace {self.trace_id}" {{'))
        self.assertEqual(out.count(" -> "), 7)
        self.assertEqual(len(re.findall(r"penwidth=3", out)), 1)

    def test_html_is_self_contained_and_escaped(self) -> None:
        rec = Recorder()
        with rec.tracer("x").start_as_current_span(
                "</script><script>alert(1)</script>", attributes={"q": "<!-- & </b>"}):
            pass
        out = render_html(trace_of(rec.take()))
        self.assertEqual(out.count("</script>"), 2)  # only ours: data + code
        self.assertNotIn("<script>alert", out)
        self.assertNotRegex(out, r"(src|href)=|https?://|@import")
        self.assertIn('id="trace-data"', out)
        data = re.search(r'<script id="trace-data" type="application/json">(.*?)</script>',
                         out, re.S)
        assert data is not None
        doc = json.loads(data.group(1))
        self.assertEqual(doc["spans"][0]["name"], "</script><script>alert(1)</script>")


class SpeedTest(unittest.TestCase):
    def test_5000_span_tree_from_the_store_under_one_second(self) -> None:
        rec = Recorder()
        trace_id = wide_trace(rec, 5000)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "spans.db")
            fill_store(path, rec.take()).shutdown()
            t0 = time.perf_counter()
            with StoreReader(path) as reader:
                out = render_text(Trace.from_dicts(reader.spans(trace_id)))
            elapsed = time.perf_counter() - t0
        self.assertEqual(len(out.splitlines()), 5001)
        self.assertLess(elapsed, 1.0)
