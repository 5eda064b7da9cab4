"""``os-trace demo``: run the OpenStack-shaped demo and show one of its traces.

Mode: with ``--transport-url`` (or a broker answering on 127.0.0.1:5672) the
conductor, worker and listener run as separate processes
(:mod:`os_trace_plugins.demo._process`), each calling ``setup()`` with the
demo's store as ``connection_string``, so one trace crosses processes as in a
real deployment.  With no broker, oslo.messaging's ``fake://`` driver only
works inside one process: the services then run as threads of this process,
and the demo says so.

The demo then plays a client: it sends a few signed requests to the API (one
asking for SQL tracing, one that the driver fails), prints the trace tree of
the SQL-traced request and writes its HTML report.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

import os_trace_plugins
from os_trace_plugins import _hooks
from os_trace_plugins.demo import _roles as roles
from os_trace_plugins.demo import _services as services
from os_trace_plugins.demo import _topology as topology
from os_trace_plugins.demo._children import Children
from os_trace_plugins.demo._web import ApiServer

__all__ = ["DemoOptions", "DemoResult", "DemoError", "run_demo", "find_broker",
           "HOOKS"]

LOG = logging.getLogger(__name__)

BROKER = ("127.0.0.1", 5672)
BROKER_URL = "rabbit://guest:guest@127.0.0.1:5672/"
#: hooks the full demo trace needs (entry-point names)
HOOKS = ("rpc", "notifications", "sqlalchemy", "drivers")
#: (server name, flavor, ask for SQL tracing)
REQUESTS = [("web-1", "m1.small", True), ("web-2", "m1.small", False),
            ("db-1", "huge", False)]


class DemoError(Exception):
    """The demo could not run; the message is one line."""


@dataclass
class DemoOptions:
    store: str
    html: str | None = None
    transport_url: str | None = None
    db_url: str | None = None
    in_process: bool = False
    requests: int = 3
    color: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    progress: TextIO = field(default_factory=lambda: sys.stderr)


@dataclass
class DemoResult:
    mode: str  # "threads" or "processes"
    transport_url: str
    store: str
    html: str
    shown: str  # the trace whose tree was printed
    trace_ids: list[str]
    statuses: list[int]
    hooks: list[str]
    notes: list[str]


class _Progress:
    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream, self.total, self.n = stream, total, 0
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def step(self, text: str) -> None:
        self.n += 1
        line = f"os-trace demo [{self.n}/{self.total}] {text}"
        if os.environ.get("OS_TRACE_DEMO_TIMING"):
            line = f"{time.monotonic():.2f} {line}"
        if self.tty:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def find_broker(timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection(BROKER, timeout=timeout):
            return True
    except OSError:
        return False


def probe_transport(url: str, timeout: float = 3.0) -> None:
    """DemoError unless a broker answers at the transport URL's first host."""
    parts = urlsplit(url)
    if parts.scheme.split("+")[0] not in ("rabbit", "amqp", "kombu", "kafka"):
        return
    netloc = parts.netloc.rsplit("@", 1)[-1].split(",")[0]
    host, _, port = netloc.rpartition(":")
    if not host:
        host, port = netloc, ""
    default = 9092 if parts.scheme.startswith("kafka") else 5672
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1",
                                       int(port or default)), timeout=timeout):
            return
    except (OSError, ValueError) as exc:
        raise DemoError(f"no broker answers at {host}:{port or default} "
                        f"({getattr(exc, 'strerror', None) or exc}); start it, fix "
                        f"--transport-url, or use --in-process") from None


def _signer() -> tuple[Any, str | None]:
    try:
        from os_trace_plugins.wsgi._signing import signed_headers
    except ImportError as exc:
        return None, f"request signing unavailable ({exc}): requests are sent unsigned"
    return signed_headers, None


def _send(url: str, key: str, name: str, flavor: str, sql: bool, signer: Any,
          ) -> tuple[str, int]:
    """One client request inside a CLIENT span; (trace id, HTTP status)."""
    tracer = trace.get_tracer("os_trace_plugins.demo")
    with tracer.start_as_current_span(
            "POST /servers", kind=SpanKind.CLIENT,
            attributes={"service.name": roles.CLIENT, "http.request.method": "POST",
                        "url.full": url, "os_trace.demo.sql_requested": sql}) as span:
        headers = {"Content-Type": "application/json"}
        if signer is not None:
            headers.update(signer(key, sql=sql))
        body = json.dumps({"name": name, "flavor": flavor}).encode()
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
        return f"{span.get_span_context().trace_id:032x}", status


def run_demo(o: DemoOptions) -> DemoResult:
    progress = _Progress(o.progress, 6)
    notes: list[str] = []
    url = o.transport_url
    if url is None and not o.in_process and find_broker():
        url = BROKER_URL
    if o.transport_url:
        probe_transport(o.transport_url)
    mode = "processes" if url else "threads"
    url = url or "fake://"
    workdir = os.path.dirname(os.path.abspath(o.store)) or "."
    os.makedirs(workdir, exist_ok=True)
    suffix = secrets.token_hex(4)
    topics = services.Topics(suffix)
    db_file = None
    if o.db_url:
        db_url = o.db_url
    else:
        db_file = os.path.join(workdir, f"demo-nova-{suffix}.sqlite")
        db_url = f"sqlite:///{db_file}"
    key = secrets.token_hex(16)
    if mode == "threads":
        why = "--in-process" if o.in_process else "no broker on 127.0.0.1:5672"
        progress.step(f"{why}: services run as threads of this process on fake:// "
                      "(give --transport-url rabbit://... for separate processes)")
    else:
        progress.step(f"starting conductor, worker and listener as processes on {url}")

    conf = topology.demo_conf(o.store, key, service_name=None if mode == "threads"
                              else roles.API)
    hooks_log = logging.getLogger(_hooks.__name__)
    level = hooks_log.level
    hooks_log.setLevel(logging.ERROR)  # summarised below instead
    try:
        on = os_trace_plugins.setup(conf, service="os-trace-demo" if mode == "threads"
                                    else roles.API)
    finally:
        hooks_log.setLevel(level)
    if not on:
        raise DemoError(f"tracing could not be set up for the store {o.store}")
    provider = trace.get_tracer_provider()
    if mode == "threads" and hasattr(provider, "add_span_processor"):
        provider.add_span_processor(roles.ServiceNamer())
    loaded = sorted(_hooks.loaded_hooks())
    missing = [h for h in HOOKS if h not in loaded]
    if missing:
        notes.append(f"hooks not installed in this build: {', '.join(missing)} "
                     f"(their spans are missing from the trace)")

    running: list[topology.Running] = []
    children: Children | None = None
    api: ApiServer | None = None
    rpc = notif = None
    worker = listener = None
    try:
        rpc, notif = topology.transports(conf, url, suffix)
        if mode == "threads":
            cond = topology.start_conductor(conf, rpc, notif, topics, db_url)
            notes += cond.notes
            w_run, worker = topology.start_worker(rpc, topics)
            l_run, listener = topology.start_listener(notif, topics)
            running += [cond, w_run, l_run]
        else:
            children = Children(url, o.store, suffix, db_url, key)
            notes += children.start(timeout=45)
        progress.step("starting the API (WSGI) on 127.0.0.1")
        api = ApiServer(services.make_api(topology.api_client(rpc, topics)), conf)
        if api.note:
            notes.append(api.note)
        signer, problem = _signer()
        if problem:
            notes.append(problem)
        plan = (REQUESTS * (1 + o.requests // len(REQUESTS)))[:max(1, o.requests)]
        progress.step(f"sending {len(plan)} signed requests (one with SQL tracing)")
        sent = [_send(api.url + "/servers", key, name, flavor, sql, signer)
                for name, flavor, sql in plan]
        ok = sum(1 for _, status in sent if status < 300)
        progress.step("waiting for the cast and the notification to be consumed")
        if children is not None:
            if not children.wait_done(ok, timeout=15):
                notes.append("the worker or the listener did not report in time")
        else:
            _wait_async(worker, listener, ok)
    finally:
        if api is not None:
            api.stop()
        for run in running:
            run.stop()
        if children is not None:
            notes += children.stop(timeout=30)
        for t in (rpc, notif):
            if t is not None:
                t.cleanup()
    progress.step("flushing spans into the store")
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush()
    if db_file:
        for path in (db_file, db_file + "-journal"):
            if os.path.exists(path):
                os.remove(path)
    trace_ids = [t for t, _ in sent]
    shown = trace_ids[0]
    progress.step(f"rendering trace {shown}")
    html_path = o.html or os.path.join(workdir, f"demo-{shown[:12]}.html")
    _report(o, shown, html_path)
    progress.done()
    return DemoResult(mode=mode, transport_url=url, store=o.store, html=html_path,
                      shown=shown, trace_ids=trace_ids, statuses=[s for _, s in sent],
                      hooks=loaded, notes=notes)


def _wait_async(worker: Any, listener: Any, expected: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if len(worker.done) >= expected and len(listener.seen) >= expected:
            return
        time.sleep(0.02)


def _report(o: DemoOptions, trace_id: str, html_path: str) -> None:
    from os_trace_plugins.report._html import render_html
    from os_trace_plugins.report._model import Trace
    from os_trace_plugins.report._text import render_text
    from os_trace_plugins.store._reader import StoreReader

    with StoreReader(o.store) as reader:
        trace_ = Trace.from_dicts(reader.spans(trace_id))
    o.out.write(render_text(trace_, color=o.color))
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(render_html(trace_))

