"""openstack-placement from PyPI, unmodified, under ``opentelemetry-instrument``.

Placement builds its WSGI app in code (``placement.wsgi.api:application``),
reads ``placement.conf`` from ``OS_PLACEMENT_CONFIG_DIR`` and runs its SQL
through oslo.db, here on MariaDB in a database of its own.  With only a
``[profiler]`` section, the stored spans must show the activation (SQL spans
of the requests, ``service.name`` the program name), no duplicate span ids
and no ERROR in the service's log; without the section, with
``enabled = false`` and with a config that fails to parse, the service must
start and answer exactly as without the package.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.auto_env import OURS, instrument_cmd, otel_env, stored_spans
from tests.services import MARIADB_URL, require_service

pytestmark = pytest.mark.services
SERVER = os.path.join(os.path.dirname(__file__), "placement-api")
HEADERS = {"X-Auth-Token": "admin", "OpenStack-API-Version": "placement 1.39",
           "Content-Type": "application/json", "Accept": "application/json"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Placement:
    """One placement process on its own port, config dir and database."""

    def __init__(self, tmp: str, db_url: str, profiler: dict[str, Any] | None,
                 disabled: str = "", broken: bool = False) -> None:
        self.port = _free_port()
        self.dir = tempfile.mkdtemp(dir=tmp)
        lines = ["[DEFAULT]", "debug = false", "use_stderr = true",
                 "[api]", "auth_strategy = noauth2", "[placement_database]",
                 f"connection = {db_url}", "sync_on_startup = true"]
        if profiler is not None:
            lines.append("[profiler]" if not broken else "[profiler")
            lines += [f"{k} = {v}" for k, v in profiler.items()]
        with open(os.path.join(self.dir, "placement.conf"), "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log_path = os.path.join(self.dir, "service.log")
        env = otel_env(disabled=disabled, OS_PLACEMENT_CONFIG_DIR=self.dir)
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(
            instrument_cmd(sys.executable, SERVER, str(self.port)), env=env,
            stdout=subprocess.PIPE, stderr=self.log, text=True)

    def wait_ready(self, timeout: float = 45) -> bool:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        while line and "READY" not in line and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
        return "READY" in line

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method, headers=HEADERS)
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        return text


class TestPlacement(unittest.TestCase):
    def setUp(self) -> None:
        require_service("mariadb")
        import pymysql

        self.db = f"auto_placement_{os.getpid()}_{self._testMethodName[-20:]}"
        base = MARIADB_URL.rsplit("/", 1)[0]
        self.url = f"{base}/{self.db}"
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root")
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {self.db}")
            cur.execute(f"CREATE DATABASE {self.db}")
        conn.close()
        self.addCleanup(self._drop)
        self.tmp = tempfile.mkdtemp(prefix="os-trace-placement-")
        self.store = os.path.join(self.tmp, "spans.db")

    def _drop(self) -> None:
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root")
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {self.db}")
        conn.close()

    def serve(self, profiler: dict[str, Any] | None, disabled: str = "",
              broken: bool = False) -> tuple[list[tuple[int, Any]], str, bool]:
        service = Placement(self.tmp, self.url, profiler, disabled, broken)
        ready = service.wait_ready()
        answers = []
        if ready:
            answers.append(service.call("POST", "/resource_providers", {"name": "rp-auto"}))
            answers.append(service.call("GET", "/resource_providers"))
        log = service.stop().replace(service.dir, "CONFDIR")
        return answers, log, ready

    def assertNoError(self, log: str) -> None:
        bad = [line for line in log.splitlines() if " ERROR " in f" {line} "
               or line.startswith("ERROR") or "Traceback" in line]
        self.assertEqual(bad, [], log[-3000:])

    def profiler(self, **values: Any) -> dict[str, Any]:
        section = {"enabled": "true", "connection_string": f"sqlite:///{self.store}",
                   "trace_sqlalchemy": "true"}
        section.update(values)
        return section

    def _shape(self, answers: list[tuple[int, Any]]) -> list[Any]:
        """Status codes and provider names: what must not change."""
        out: list[Any] = []
        for status, body in answers:
            providers = body.get("resource_providers") if isinstance(body, dict) else None
            out.append((status, sorted(p["name"] for p in providers or [])))
        return out

    def test_profiler_section_traces_placement(self) -> None:
        answers, log, ready = self.serve(self.profiler())
        self.assertTrue(ready, log[-3000:])
        self.assertEqual([a[0] for a in answers], [200, 200], answers)
        self.assertEqual(answers[1][1]["resource_providers"][0]["name"], "rp-auto")
        spans = stored_spans(self.store)
        sql = [s for s in spans if s["attributes"].get("db.system.name") in ("mariadb", "mysql")]
        self.assertTrue(sql, [s["name"] for s in spans])
        texts = " ".join(str(s["attributes"].get("db.query.text")) for s in sql)
        self.assertIn("resource_providers", texts)
        self.assertEqual({s["resource"]["service.name"] for s in spans}, {"placement-api"})
        ids = [s["span_id"] for s in spans]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertIn("tracing on for placement-api", log)  # once oslo.log is set up
        self.assertNoError(log)
        edges = [s for s in spans if s["kind"] == "SERVER"]
        self.assertEqual(len(edges), 2, [s["name"] for s in spans])
        # route-named: placement matches with python-routes itself
        self.assertEqual(sorted(s["name"] for s in edges),
                         ["GET /resource_providers", "POST /resource_providers"])
        self.assertEqual({s["attributes"].get("http.route") for s in edges},
                         {"/resource_providers"})
        for edge in edges:  # one trace per request, its SQL inside it
            inside = [s for s in sql if s["trace_id"] == edge["trace_id"]]
            self.assertTrue(inside, edge["name"])

    def test_serves_as_without_the_package(self) -> None:
        bare, bare_log, ready = self.serve(self.profiler(), disabled=OURS)
        self.assertTrue(ready, bare_log[-3000:])
        self._drop()
        self.setUp_db_again()
        for variant in ({"enabled": "false"}, None):
            profiler = self.profiler(**variant) if variant else None
            answers, log, ready = self.serve(profiler)
            self.assertTrue(ready, log[-3000:])
            self.assertEqual(self._shape(answers), self._shape(bare), variant)
            self.assertNoError(log)
            self.assertFalse(os.path.exists(self.store), variant)
            self._drop()
            self.setUp_db_again()

    def test_config_that_fails_to_parse(self) -> None:
        _, ours, ready_ours = self.serve(self.profiler(), broken=True)
        _, bare, ready_bare = self.serve(self.profiler(), broken=True, disabled=OURS)
        self.assertEqual(ready_ours, ready_bare)
        last = [line for line in ours.splitlines() if line.strip()][-1:]
        self.assertEqual(last, [line for line in bare.splitlines() if line.strip()][-1:])

    def setUp_db_again(self) -> None:
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root")
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {self.db}")
        conn.close()
