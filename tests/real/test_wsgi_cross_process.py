"""Two API services in separate processes, the first calling the second.

A signed request enters svc-a; svc-a calls svc-b through ``requests``; both
export through the real OTLP/HTTP exporter to a receiver run by the test.
Expected: one trace (operator -> a SERVER -> a CLIENT -> b SERVER), the SQL
flag reaching b as baggage, and an unsigned traceparent only linked.

The RPC leg (svc-a calling RPC on RabbitMQ) plugs in through
``tests.real.wsgi_service --leg module:function`` (see that module).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
from typing import Any, ClassVar

import requests

from os_trace_plugins.wsgi import signed_headers
from tests.otlp_receiver import OTLPReceiver, ReceivedSpan
from tests.secret_values import HMAC_KEY

KEY = HMAC_KEY
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER, CLIENT = 2, 3  # OTLP SpanKind values


class CrossProcessTest(unittest.TestCase):
    procs: ClassVar[list[subprocess.Popen[bytes]]] = []
    logs: ClassVar[list[Any]] = []
    receiver: ClassVar[OTLPReceiver]
    tmp: ClassVar[str]
    url_a: ClassVar[str]

    @classmethod
    def _spawn(cls, name: str, tmp: str, *extra: str) -> str:
        ready = os.path.join(tmp, f"{name}.port")
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   OTEL_BSP_SCHEDULE_DELAY="100")
        log = open(os.path.join(tmp, f"{name}.log"), "wb")
        cls.logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.real.wsgi_service", "--name", name,
             "--otlp-port", str(cls.receiver.port), "--key", KEY, "--ready-file", ready,
             "--max-seconds", "90", *extra],
            cwd=ROOT, env=env, stdout=log, stderr=log)
        cls.procs.append(proc)
        deadline = time.monotonic() + 30
        while not os.path.exists(ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                with open(log.name, encoding="utf-8", errors="replace") as f:
                    err = f.read()
                raise RuntimeError(f"{name} did not start: {err[-2000:]}")
            time.sleep(0.05)
        with open(ready, encoding="utf-8") as f:
            return f"http://127.0.0.1:{int(f.read())}"

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.mkdtemp(prefix="wsgi-real-")
        cls.receiver = OTLPReceiver().start()
        try:
            url_b = cls._spawn("svc-b", cls.tmp)
            cls.url_a = cls._spawn("svc-a", cls.tmp, "--downstream", url_b,
                                   "--leg", "tests.real.wsgi_service:internal_leg")
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        for proc in cls.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in cls.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for log in cls.logs:
            log.close()
        cls.procs, cls.logs = [], []
        cls.receiver.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def spans_of(self, trace_id: str, count: int) -> list[ReceivedSpan]:
        spans = self.receiver.wait_until(
            lambda ss: len([s for s in ss if s.trace_id == trace_id]) >= count)
        return [s for s in spans if s.trace_id == trace_id]

    def test_signed_request_is_one_trace_across_both_services(self) -> None:
        headers = signed_headers(KEY, sql=True)
        trace_id, operator_span = headers["traceparent"].split("-")[1:3]
        resp = requests.get(self.url_a + "/call", headers=headers, timeout=20)
        self.assertEqual(resp.status_code, 200)
        body: dict[str, Any] = resp.json()
        self.assertEqual(body["downstream"]["baggage"], {"os_trace.sql": "1"})
        self.assertEqual(resp.headers["traceparent"].split("-")[1], trace_id)

        spans = self.spans_of(trace_id, 4)
        by = {(s.service, s.kind): s for s in spans}
        self.assertEqual(len(spans), 4, [(s.service, s.name) for s in spans])
        leg = by[("svc-a", 1)]  # INTERNAL: the extension point the RPC leg uses
        self.assertEqual(body["legs"], {"tests.real.wsgi_service:internal_leg": leg.span_id})
        a_server, a_client = by[("svc-a", SERVER)], by[("svc-a", CLIENT)]
        b_server = by[("svc-b", SERVER)]
        self.assertEqual(a_server.parent_span_id, "")  # signer had no span: root
        self.assertNotEqual(a_server.span_id, operator_span)
        self.assertEqual(a_client.parent_span_id, a_server.span_id)
        self.assertEqual(leg.parent_span_id, a_server.span_id)
        self.assertEqual(b_server.parent_span_id, a_client.span_id)
        self.assertEqual(a_server.attributes["os_trace.trust"], "signed")
        self.assertEqual(b_server.attributes["os_trace.trust"], "signed")
        self.assertEqual(b_server.attributes["url.path"], "/leaf")
        self.assertEqual(a_client.attributes["http.response.status_code"], 200)
        self.assertEqual(body["downstream_traceparent"].split("-")[1:3],
                         [trace_id, b_server.span_id])

    def test_unsigned_traceparent_starts_a_new_linked_trace(self) -> None:
        claimed = uuid.uuid4().hex
        resp = requests.get(self.url_a + "/call", timeout=20, headers={
            "traceparent": f"00-{claimed}-00f067aa0ba902b7-01",
            "baggage": "os_trace.sql=1"})
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(resp.json()["downstream"]["baggage"], {})
        new_trace = resp.headers["traceparent"].split("-")[1]
        self.assertNotEqual(new_trace, claimed)
        spans = self.spans_of(new_trace, 4)
        a_server = next(s for s in spans if s.service == "svc-a" and s.kind == SERVER)
        self.assertEqual(a_server.links, [(claimed, "00f067aa0ba902b7")])
        self.assertEqual({s.service for s in spans}, {"svc-a", "svc-b"})
        self.assertEqual(self.spans_of(claimed, 0), [])

    def test_osprofiler_client_headers_line_up_with_its_base_id(self) -> None:
        from osprofiler import profiler
        from osprofiler import web as osp_web

        profiler.init(KEY)  # what `openstack --os-profile KEY` does
        try:
            headers = osp_web.get_trace_id_headers()
            prof = profiler.get()
            assert prof is not None
            base_id = prof.get_base_id()
        finally:
            profiler.clean()
        resp = requests.get(self.url_a + "/call", headers=headers, timeout=20)
        self.assertEqual(resp.status_code, 200)
        trace_id = f"{uuid.UUID(base_id).int:032x}"
        self.assertEqual(resp.headers["traceparent"].split("-")[1], trace_id)
        spans = self.spans_of(trace_id, 4)
        a_server = next(s for s in spans if s.service == "svc-a" and s.kind == SERVER)
        self.assertEqual(a_server.attributes["os_trace.trust"], "osprofiler")
        self.assertEqual(a_server.parent_span_id, "")  # base_id == parent_id: a root
        self.assertEqual({s.service for s in spans}, {"svc-a", "svc-b"})
