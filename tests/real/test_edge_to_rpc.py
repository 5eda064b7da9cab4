"""One signed request, two API processes, a conductor on RabbitMQ: one trace.

Four processes: this test (the operator, and the OTLP/HTTP receiver), svc-a
and svc-b (``tests.real.wsgi_service``, wsgiref + ``TracingMiddleware``) and
a conductor (``tests.real.rpc_conductor``, an oslo.messaging RPC server on
RabbitMQ).  svc-a calls svc-b through ``requests``; both call the
conductor's ``lookup`` over RPC, which runs one SQLite query through
SQLAlchemy with ``trace_sqlalchemy`` OFF.  Every process exports with the
real OTLP exporter; the assertions are on the spans the receiver decoded::

    svc-a SERVER ─┬─ RPC CLIENT ── conductor SERVER ── SQL (baggage os_trace.sql=1)
                  └─ HTTP CLIENT ── svc-b SERVER ── RPC CLIENT ── conductor SERVER ── SQL

The SQL spans prove that the per-request flag of the signed header crossed
HTTP and RPC as baggage and opened the conductor's SQL gate; the control
request (signed without ``sql``) proves that nothing else opened it.
"""

from __future__ import annotations

import json
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

from os_trace_plugins.wsgi._signing import signed_headers
from tests.otlp_receiver import OTLPReceiver, ReceivedSpan
from tests.secret_values import HMAC_KEY_OLD
from tests.services import RABBIT_URL, require_service

KEY = HMAC_KEY_OLD
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEG = "tests.real.rpc_conductor:rpc_leg"
LIFETIME = 90  # seconds any child lives at most, even if this test dies
INTERNAL, SERVER, CLIENT = 1, 2, 3  # OTLP SpanKind values


def _delete_broker_objects(queues: list[str], exchanges: list[str]) -> None:
    """Remove what the run declared on RabbitMQ (best effort)."""
    import kombu

    url = "amqp://" + RABBIT_URL.split("://", 1)[1]
    with kombu.Connection(url, connect_timeout=5) as conn:
        for delete, names in (("queue_delete", queues), ("exchange_delete", exchanges)):
            for name in names:
                try:
                    getattr(conn.default_channel, delete)(name)
                except Exception:  # already gone, or the channel was closed
                    conn.release()
                    conn.connect()


class EdgeToRPCTest(unittest.TestCase):
    procs: ClassVar[list[subprocess.Popen[bytes]]] = []
    logs: ClassVar[list[Any]] = []
    receiver: ClassVar[OTLPReceiver]
    url_a: ClassVar[str]
    tmp: ClassVar[str]
    topic: ClassVar[str]
    exchange: ClassVar[str]

    @classmethod
    def _spawn(cls, name: str, module: str, *args: str) -> str:
        """Start ``python -m module``; return what it wrote to its ready file."""
        ready = os.path.join(cls.tmp, f"{name}.ready")
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   OTEL_BSP_SCHEDULE_DELAY="100", EDGE_RPC_TOPIC=cls.topic,
                   EDGE_RPC_EXCHANGE=cls.exchange)
        log = open(os.path.join(cls.tmp, f"{name}.log"), "wb")
        cls.logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-W", "ignore", "-m", module, "--otlp-port",
             str(cls.receiver.port), "--ready-file", ready, "--max-seconds", str(LIFETIME),
             *args], cwd=ROOT, env=env, stdout=log, stderr=log)
        cls.procs.append(proc)
        deadline = time.monotonic() + 30
        while not os.path.exists(ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                with open(log.name, encoding="utf-8", errors="replace") as f:
                    err = f.read()
                raise RuntimeError(f"{name} did not start: {err[-2000:]}")
            time.sleep(0.05)
        with open(ready, encoding="utf-8") as f:
            return f.read()

    @classmethod
    def setUpClass(cls) -> None:
        require_service("rabbitmq")
        run = uuid.uuid4().hex[:8]
        cls.topic, cls.exchange = f"os-trace-edge-{run}", f"os-trace-edge-x-{run}"
        cls.tmp = tempfile.mkdtemp(prefix="edge-rpc-")
        cls.receiver = OTLPReceiver().start()
        try:
            cls._spawn("conductor", "tests.real.rpc_conductor",
                       "--topic", cls.topic, "--exchange", cls.exchange)
            wsgi = ("tests.real.wsgi_service", "--key", KEY, "--leg", LEG)
            url_b = "http://127.0.0.1:" + cls._spawn("svc-b", *wsgi, "--name", "svc-b")
            cls.url_a = "http://127.0.0.1:" + cls._spawn(
                "svc-a", *wsgi, "--name", "svc-a", "--downstream", url_b)
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
        try:
            _delete_broker_objects([cls.topic, f"{cls.topic}.conductor"],
                                   [cls.exchange, f"{cls.topic}_fanout"])
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self) -> None:
        require_service("rabbitmq")

    def call(self, sql: bool) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """A signed request to svc-a; returns trace id and both RPC answers."""
        headers = signed_headers(KEY, sql=sql)
        trace_id = headers["traceparent"].split("-")[1]
        resp = requests.get(self.url_a + "/call", headers=headers, timeout=40)
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(resp.headers["traceparent"].split("-")[1], trace_id)
        body = resp.json()
        return (trace_id, json.loads(body["legs"][LEG]),
                json.loads(body["downstream"]["legs"][LEG]))

    def trace(self, trace_id: str, conductor_servers: int,
              total: int) -> list[ReceivedSpan]:
        """Spans of ``trace_id`` once ``total`` arrived and the conductor's SERVER spans."""
        def done(spans: list[ReceivedSpan]) -> bool:
            mine = [s for s in spans if s.trace_id == trace_id]
            return len(mine) >= total and conductor_servers == len(
                [s for s in mine if s.service == "conductor" and s.kind == SERVER])
        spans = [s for s in self.receiver.wait_until(done, timeout=20)
                 if s.trace_id == trace_id]
        self.assertEqual(len(spans), total,
                         [(s.service, s.name, s.kind) for s in spans])
        return spans

    def split(self, spans: list[ReceivedSpan]) -> dict[str, Any]:
        """The spans of the expected tree, by role (each role asserted unique)."""
        def one(service: str, kind: int, attr: str) -> ReceivedSpan:
            found = [s for s in spans
                     if s.service == service and s.kind == kind and attr in s.attributes]
            self.assertEqual(len(found), 1, f"{service} {kind} {attr}: {found}")
            return found[0]

        return {
            "a": one("svc-a", SERVER, "url.path"),
            "a_rpc": one("svc-a", CLIENT, "messaging.system"),
            "a_http": one("svc-a", CLIENT, "http.request.method"),
            "b": one("svc-b", SERVER, "url.path"),
            "b_rpc": one("svc-b", CLIENT, "messaging.system"),
            "conductor": [s for s in spans if s.service == "conductor" and s.kind == SERVER],
            "sql": [s for s in spans if s.service == "conductor" and s.kind == CLIENT],
        }

    def test_signed_sql_request_is_one_trace_through_http_and_rpc(self) -> None:
        trace_id, a_leg, b_leg = self.call(sql=True)
        # what the conductor saw: the baggage crossed HTTP then RPC, the
        # trace keys were stripped from the RPC context before the endpoint
        self.assertEqual(a_leg["baggage"], {"os_trace.sql": "1"})
        self.assertEqual(b_leg["baggage"], {"os_trace.sql": "1"})
        self.assertEqual((a_leg["caller"], b_leg["caller"]), ("svc-a", "svc-b"))
        for leg in (a_leg, b_leg):
            self.assertFalse({"traceparent", "baggage", "trace_info"} & set(leg["ctxt_keys"]))

        spans = self.trace(trace_id, conductor_servers=2, total=9)
        r = self.split(spans)
        self.assertEqual({s.service for s in spans}, {"svc-a", "svc-b", "conductor"})
        self.assertEqual(len({s.resource["process.pid"] for s in spans}), 3)
        self.assertEqual(r["a"].parent_span_id, "")  # the signer had no span: root
        self.assertEqual(r["a"].attributes["os_trace.trust"], "signed")
        self.assertEqual(r["b"].attributes["os_trace.trust"], "signed")
        self.assertEqual(r["b"].attributes["url.path"], "/leaf")
        # svc-a: RPC and HTTP under its request
        self.assertEqual(r["a_rpc"].parent_span_id, r["a"].span_id)
        self.assertEqual(r["a_http"].parent_span_id, r["a"].span_id)
        # svc-b: its request under svc-a's HTTP client span, its RPC under it
        self.assertEqual(r["b"].parent_span_id, r["a_http"].span_id)
        self.assertEqual(r["b_rpc"].parent_span_id, r["b"].span_id)
        for rpc in (r["a_rpc"], r["b_rpc"]):
            self.assertEqual(rpc.attributes["messaging.system"], "rabbitmq")
            self.assertEqual(rpc.attributes["messaging.destination.name"], self.topic)
            self.assertEqual(rpc.name, "lookup call")
        # the conductor: one SERVER span under each RPC client span, the one
        # the endpoint ran in (the span id it returned), and its SQL under it
        by_parent = {s.parent_span_id: s for s in r["conductor"]}
        self.assertEqual(set(by_parent), {r["a_rpc"].span_id, r["b_rpc"].span_id})
        self.assertEqual(by_parent[r["a_rpc"].span_id].span_id, a_leg["span_id"])
        self.assertEqual(by_parent[r["b_rpc"].span_id].span_id, b_leg["span_id"])
        self.assertEqual({s.name for s in r["conductor"]}, {"lookup process"})
        self.assertEqual(len(r["sql"]), 2)
        self.assertEqual({s.parent_span_id for s in r["sql"]},
                         {s.span_id for s in r["conductor"]})
        for sql in r["sql"]:
            self.assertEqual(sql.attributes["db.system.name"], "sqlite")
            self.assertIn("SELECT", sql.attributes["db.query.text"])
            self.assertEqual(sql.scope, "os_trace_plugins.sqlalchemy")

    def test_signed_request_without_sql_flag_records_no_sql(self) -> None:
        # control: the same path without the flag; trace_sqlalchemy is off in
        # the conductor, so nothing but the baggage can open its SQL gate
        trace_id, a_leg, b_leg = self.call(sql=False)
        self.assertEqual((a_leg["baggage"], b_leg["baggage"]), ({}, {}))
        spans = self.trace(trace_id, conductor_servers=2, total=7)
        r = self.split(spans)
        self.assertEqual(r["sql"], [])
        self.assertEqual({s.parent_span_id for s in r["conductor"]},
                         {r["a_rpc"].span_id, r["b_rpc"].span_id})
