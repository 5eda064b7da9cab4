"""designate from PyPI, unmodified: its API and its central RPC worker.

designate-central runs on oslo.service's threading backend (its cmd package
selects it, the case that died with BackendAlreadySelected) and forks its
worker through cotyledon; the API is designate's WSGI app built in code
(``designate.wsgi.api``).  Both under ``opentelemetry-instrument`` with a
``[profiler]`` section only, RabbitMQ between them, MariaDB behind central,
one embedded store for both.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.auto_env import BIN, instrument_cmd, otel_env, stored_spans
from tests.services import MARIADB_URL, RABBIT_URL, require_service
from tests.services.test_placement import _free_port

pytestmark = pytest.mark.services
HERE = os.path.dirname(__file__)
PASTE = os.path.join(os.path.dirname(BIN), "etc", "designate", "api-paste.ini")


def _rpc_hook_converted() -> bool:
    """False while the RPC hook still uses the removed Hook.presampler (main at
    896a09a); the RPC engineer's branch removes it, then the strict xfail
    below turns into a required pass."""
    from os_trace_plugins.rpc import _client as client

    return "presampler" not in inspect.getsource(client)


class TestDesignate(unittest.TestCase):
    def setUp(self) -> None:
        require_service("mariadb")
        require_service("rabbitmq")
        import pymysql

        tag = f"auto_designate_{os.getpid()}_{self._testMethodName[-12:]}"
        self.db = tag
        self.conn = pymysql.connect(host="127.0.0.1", port=3306, user="root")
        with self.conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {tag}")
            cur.execute(f"CREATE DATABASE {tag}")
        self.addCleanup(self._drop)
        self.dir = tempfile.mkdtemp(prefix="os-trace-designate-")
        self.store = os.path.join(self.dir, "spans.db")
        self.port = _free_port()
        shutil.copy(PASTE, os.path.join(self.dir, "api-paste.ini"))
        lines = ["[DEFAULT]", f"transport_url = {RABBIT_URL}",
                 f"control_exchange = {tag}", "use_stderr = true",
                 "[service:api]", f"listen = 127.0.0.1:{self.port}",
                 "auth_strategy = noauth",
                 f"api_paste_config = {os.path.join(self.dir, 'api-paste.ini')}",
                 "[service:central]", "workers = 1", f"topic = {tag}_central",
                 "[storage:sqlalchemy]",
                 f"connection = {MARIADB_URL.rsplit('/', 1)[0]}/{tag}",
                 "[profiler]", "enabled = true",
                 f"connection_string = sqlite:///{self.store}", "trace_sqlalchemy = true"]
        self.conf = os.path.join(self.dir, "designate.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        sync = subprocess.run([os.path.join(BIN, "designate-manage"), "--config-file",
                               self.conf, "database", "sync"],
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(sync.returncode, 0, sync.stderr[-2000:])

    def _drop(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {self.db}")
        self.conn.close()

    def start(self, argv: list[str], name: str) -> tuple[subprocess.Popen[str], Any]:
        log = open(os.path.join(self.dir, f"{name}.log"), "w+")
        env = otel_env(OS_DESIGNATE_CONFIG_DIR=self.dir)
        proc = subprocess.Popen(instrument_cmd(*argv), env=env, stdout=log,
                                stderr=subprocess.STDOUT, text=True)
        return proc, log

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:  # first RPC: central
                return resp.status, json.loads(resp.read() or b"null")  # may still start
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError as exc:  # API not listening yet
            return 0, str(exc)

    @staticmethod
    def _wait_for(log: Any, text: str, timeout: float = 40) -> None:
        """Until central's worker consumes (a call sent earlier finds no queue)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(log.name) as f:
                if text in f.read():
                    return
            time.sleep(0.3)

    def run_both(self) -> tuple[list[tuple[int, Any]], dict[str, str], int]:
        central, central_log = self.start(
            [os.path.join(BIN, "designate-central"), "--config-file", self.conf], "central")
        self._wait_for(central_log, "Creating new service status entry for central")
        api, api_log = self.start(
            [sys.executable, os.path.join(HERE, "designate-api"), str(self.port)], "api")
        answers: list[tuple[int, Any]] = []
        try:
            deadline = time.monotonic() + 30
            status, body = 0, None
            while time.monotonic() < deadline and status == 0:
                status, body = self.call("POST", "/v2/tlds", {"name": "autotest"})
                if status == 0:
                    time.sleep(0.5)
            answers.append((status, body))
            answers.append(self.call("GET", "/v2/tlds"))
        finally:
            logs = {}
            for name, proc, log in (("api", api, api_log), ("central", central, central_log)):
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                log.seek(0)
                logs[name] = log.read()
                log.close()
        return answers, logs, central.pid

    def test_api_and_central_activate(self) -> None:
        answers, logs, central_pid = self.run_both()
        self.assertEqual(answers[0][0], 201, (answers, logs["api"][-2000:],
                                              logs["central"][-2000:]))
        self.assertEqual([t["name"] for t in answers[1][1]["tlds"]], ["autotest"])
        for name in ("api", "central"):
            self.assertIn(f"tracing on for designate-{name}", logs[name])
            service_errors = [line for line in logs[name].splitlines()
                              if " ERROR " in line and " os_trace_plugins " not in line]
            self.assertEqual(service_errors, [], logs[name][-3000:])
            self.assertNotIn("BackendAlreadySelected", logs[name])
        spans = stored_spans(self.store)
        inserts = [s for s in spans if s["name"] == "INSERT tlds"]
        self.assertEqual(len(inserts), 1, [s["name"] for s in spans])
        worker = inserts[0]["resource"]
        self.assertEqual(worker["service.name"], "designate-central")
        # cotyledon forked the worker after setup(): its own pid, not the master's
        self.assertNotEqual(worker["process.pid"], central_pid)
        ids = [s["span_id"] for s in spans]
        self.assertEqual(len(ids), len(set(ids)))

    @pytest.mark.xfail(not _rpc_hook_converted(), strict=True,
                       reason="RPC hook still uses the removed presampler (RPC area)")
    def test_one_trace_across_api_and_central(self) -> None:
        _, logs, _ = self.run_both()
        for name in ("api", "central"):
            self.assertNotIn(" ERROR ", logs[name], logs[name][-3000:])
        spans = stored_spans(self.store)
        insert = next(s for s in spans if s["name"] == "INSERT tlds")
        trace = [s for s in spans if s["trace_id"] == insert["trace_id"]]
        services = {s["resource"]["service.name"] for s in trace}
        self.assertEqual(services, {"designate-api", "designate-central"})
        kinds = {(s["resource"]["service.name"], s["kind"]) for s in trace}
        self.assertIn(("designate-api", "CLIENT"), kinds)
        self.assertIn(("designate-central", "SERVER"), kinds)
