"""The product run with every option that must not leak, spans checked directly (6. Secrets).

One scenario per kind of secret, each through the real entry points and with
the registered values of tests/secret_values.py:

* SQL parameters with ``trace_sqlalchemy`` on and ``trace_sqlalchemy_parameters``
  off, including a failing INSERT whose error (SQLite, and PostgreSQL, whose
  ``DETAIL`` quotes the row) propagates through an RPC endpoint and back to
  the caller as a ``RemoteError``;
* a database URL with a password (PostgreSQL accepts any password here);
* a transport URL with a password, and OSProfiler ``trace_info`` carrying its
  ``hmac_key`` into an RPC server;
* signed API requests (our signature and OSProfiler's) with the HMAC key, to
  a URL with ``?temp_url_sig=...&token=...``;
* driver calls with secret arguments, arguments hidden and revealed.

The finished spans are scanned here (a failure names the span); the
session-wide scan (tests/leakscan.py) sees them again with everything else.
"""

from __future__ import annotations

import io
from typing import Any

import sqlalchemy as sa
from oslo_messaging.rpc.client import RemoteError

from os_trace_plugins._hooks import shared
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.db._hook import SQLAlchemyHook
from os_trace_plugins.drivers import trace_driver
from os_trace_plugins.wsgi import TracingMiddleware
from os_trace_plugins.wsgi import _signing as signing
from tests import leakscan
from tests.figures import report
from tests.functional._driver_sample import SampleDriver
from tests.functional.rpc_env import RPCTestCase
from tests.secret_values import (
    DB_PASSWORD,
    DRIVER_PASSWORD,
    DRIVER_TOKEN,
    HMAC_KEY,
    QUERY_TOKEN,
    SECRETS,
    SQL_PARAMETER,
    TEMP_URL_SIG,
    URL_PASSWORD,
)
from tests.services import POSTGRES_URL, require_service
from tests.sql_helpers import _reset_sql


class Inventory:
    """An RPC endpoint whose INSERT violates a unique constraint."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(self, ctxt: Any, name: str) -> int:
        with self.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO leak_item (name) VALUES (:n)"), {"n": name})
            conn.execute(sa.text("INSERT INTO leak_item (name) VALUES (:n)"), {"n": name})
        return 1


class NoLeakTest(RPCTestCase):
    url = f"fake://nova:{URL_PASSWORD}@localhost:5672/"
    #: one scanner for the class, so its figure adds up every scenario
    scanner = leakscan.Scanner(SECRETS)
    scenarios: set[str] = set()

    def setUp(self) -> None:
        super().setUp()
        _reset_sql()
        self.addCleanup(_reset_sql)
        self.bind(trace_sqlalchemy=True, trace_sqlalchemy_parameters=False,
                  sql_root_spans=True, hmac_keys=HMAC_KEY)
        shared(SQLAlchemyHook).instrument(self.conf, self.provider)

    def check(self, case: str, minimum: int) -> None:
        spans = self.spans()
        before = len(self.scanner.findings)
        self.scanner.scan_spans(spans, case)
        self.scenarios.add(case)
        self.assertGreaterEqual(len(spans), minimum, case)
        self.assertEqual(self.scanner.findings[before:], [], case)

    def _rpc_sql(self, engine: sa.Engine, case: str) -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS leak_item"))
            conn.execute(sa.text("CREATE TABLE leak_item (name VARCHAR(200) PRIMARY KEY)"))
            conn.execute(sa.text("SELECT * FROM leak_item WHERE name = :n"),
                         {"n": SQL_PARAMETER})
        self.start_server([Inventory(engine)])
        with self.tracer.start_as_current_span("nova-api"):
            with self.assertRaises((RemoteError, sa.exc.IntegrityError)) as raised:
                self.client().call({"request_id": "req-1", "auth_token": DRIVER_TOKEN,
                                    "trace_info": {"base_id": "x", "hmac_key": HMAC_KEY}},
                                   "add", name=SQL_PARAMETER)
        self.assertIn(SQL_PARAMETER, str(raised.exception))  # the service's error has it
        errors = [s for s in self.spans() if s.status.status_code.name == "ERROR"]
        self.assertGreaterEqual(len(errors), 3, [s.name for s in errors])  # SQL, server, client
        self.check(case, 6)

    def test_sqlite_parameters_and_transport_url(self) -> None:
        engine = sa.create_engine(f"sqlite:///{self.tmpdir}/inventory.db")  # server thread
        self._rpc_sql(engine, "sqlite + fake transport with a password")

    def test_postgresql_url_password_and_detail(self) -> None:
        require_service("postgresql")
        url = sa.make_url(POSTGRES_URL).set(password=DB_PASSWORD)  # trust: any password
        engine = sa.create_engine(url)
        self.addCleanup(engine.dispose)
        self._rpc_sql(engine, "postgresql with a URL password")

    def test_signed_requests_and_query_tokens(self) -> None:
        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            start_response("200 OK", [])
            return [b"ok"]

        mw = TracingMiddleware(app, conf=self.conf)
        info, mac = signing.osprofiler_pack({"base_id": "9a1b6e4c-6a5e-4c43-9c8d-2b7f0c1d2e3f",
                                             "parent_id": "9a1b6e4c-6a5e-4c43-9c8d-2b7f0c1d2e3f"},
                                            HMAC_KEY)
        with self.tracer.start_as_current_span("client"):
            ours = signing.signed_headers(HMAC_KEY, sql=True)
        for headers in (ours, {signing.X_TRACE_INFO: info, signing.X_TRACE_HMAC: mac}):
            env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/v1/AUTH_a/c/o",
                   "QUERY_STRING": f"temp_url_sig={TEMP_URL_SIG}&token={QUERY_TOKEN}",
                   "SERVER_NAME": "swift", "SERVER_PORT": "8080", "wsgi.input": io.BytesIO(),
                   "HTTP_X_AUTH_TOKEN": DRIVER_TOKEN, "HTTP_COOKIE": f"s={QUERY_TOKEN}",
                   **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}}
            self.assertEqual(b"".join(mw(env, lambda *a: None)), b"ok")
        trusted = [s.attributes.get("os_trace.trust") for s in self.spans()
                   if s.attributes and "os_trace.trust" in s.attributes]
        self.assertEqual(sorted(trusted), ["osprofiler", "signed"])
        self.check("signed requests with query tokens", 3)

    def test_driver_secret_arguments(self) -> None:
        driver = trace_driver(SampleDriver(), "compute")
        secret = {"data": {"auth_password": DRIVER_PASSWORD, "target": "iqn.x",
                           "url": f"mysql://nova:{DRIVER_PASSWORD}@db/nova"}}
        for reveal in (False, True):
            SWITCHES.set("trace_driver_arguments", reveal)
            with self.tracer.start_as_current_span("request"):
                driver.spawn(f"ctx token={DRIVER_TOKEN}", "vm1", admin_password=DRIVER_PASSWORD,
                             connection_info=secret)
        revealed = [s for s in self.spans() if s.attributes
                    and "openstack.arg.instance" in s.attributes]
        self.assertEqual(len(revealed), 1)  # the arguments were recorded, masked
        self.check("driver arguments hidden and revealed", 4)

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.scenarios:
            report("6 secrets", "product run with options that must not leak (test_no_leak)",
                   scenarios=len(cls.scenarios), spans_scanned=cls.scanner.spans,
                   secrets_registered=len(SECRETS), secrets_found=len(cls.scanner.findings))
        super().tearDownClass()
