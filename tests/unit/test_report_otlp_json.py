"""OTLP/JSON input: hex ids (the OTLP rule), base64 ids (protobuf JSON), JSON lines, junk."""

from __future__ import annotations

import json
import os
import tempfile
import unittest

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from os_trace_plugins.report._model import ReportError, Trace
from os_trace_plugins.report._otlp_json import load_otlp_json, parse_otlp, trace_ids
from tests.store_fixtures import Recorder, openstack_trace

HEX_DOC = {"resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name",
                                 "value": {"stringValue": "glance-api"}}]},
    "scopeSpans": [{"scope": {"name": "x"}, "spans": [
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
         "name": "GET /v2/images", "kind": 2, "startTimeUnixNano": "1544712660000000000",
         "endTimeUnixNano": "1544712661000000000",
         "attributes": [{"key": "http.request.method", "value": {"stringValue": "GET"}},
                        {"key": "n", "value": {"intValue": "3"}},
                        {"key": "l", "value": {"arrayValue": {"values": [
                            {"boolValue": True}]}}}],
         "status": {"code": 2, "message": "boom"},
         "events": [{"timeUnixNano": "1544712660500000000", "name": "ev"}]},
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b173",
         "parentSpanId": "eee19b7ec3c1b174", "name": "SELECT", "kind": "SPAN_KIND_CLIENT",
         "startTimeUnixNano": "1544712660100000000",
         "endTimeUnixNano": "1544712660200000000",
         "status": {"code": "STATUS_CODE_OK"}}]}]}]}


class OtlpJsonTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="os-trace-otlp-")

    def _file(self, text: str) -> str:
        path = os.path.join(self.tmp, "t.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_hex_document(self) -> None:
        spans = parse_otlp(HEX_DOC)
        trace = Trace.from_dicts(spans)
        root, child = trace.spans
        self.assertEqual(root.service, "glance-api")
        self.assertEqual((root.kind, root.status_code, root.status_message),
                         ("SERVER", "ERROR", "boom"))
        self.assertEqual(root.attributes, {"http.request.method": "GET", "n": 3, "l": [True]})
        self.assertEqual(root.events[0]["time_ns"], 1544712660500000000)
        self.assertEqual((child.kind, child.status_code, child.depth), ("CLIENT", "OK", 1))

    def test_sdk_spans_through_protobuf_json_mapping(self) -> None:
        rec = Recorder()
        trace_id = openstack_trace(rec)
        doc = json_format.MessageToDict(encode_spans(rec.take()))
        path = self._file(json.dumps(doc))
        spans = load_otlp_json(path)
        self.assertEqual(trace_ids(spans), [trace_id])
        trace = Trace.from_dicts(spans)
        self.assertEqual(len(trace.roots), 1)
        self.assertEqual(trace.roots[0].name, "POST /v2.1/servers")
        self.assertEqual(trace.services, ["nova-api", "nova-compute", "nova-conductor"])

    def test_json_lines(self) -> None:
        path = self._file(json.dumps(HEX_DOC) + "\n" + json.dumps(HEX_DOC) + "\n")
        self.assertEqual(len(load_otlp_json(path)), 4)

    def test_not_otlp(self) -> None:
        cases = {"junk": "not json at all {", "json": '{"data": []}', "list": "[1, 2]",
                 "empty": '{"resourceSpans": []}',
                 "badid": json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
                     {"traceId": "xyz", "spanId": "eee19b7ec3c1b174"}]}]}]})}
        for name, text in cases.items():
            with self.subTest(name), self.assertRaises(ReportError) as cm:
                load_otlp_json(self._file(text))
            self.assertNotIn("\n", str(cm.exception))
        with self.assertRaisesRegex(ReportError, "cannot read"):
            load_otlp_json(os.path.join(self.tmp, "missing.json"))
