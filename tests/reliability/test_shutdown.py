"""3. Nothing lost on shutdown (issue 14, docs/reliability.md).

A real oslo.service RPC service (tests/reliability/sigterm_service.py) on
RabbitMQ, set up by ``os_trace_plugins.setup()`` and launched by
``ServiceLauncher`` or ``ProcessLauncher`` with two forked workers, on the
threading and the eventlet backend, handles N traced calls and gets SIGTERM
right after the last answer, while its spans are still in the batch queue
(the SDK's schedule delay is 5 s).  Every one of the N server spans must be
in the embedded store, or at the OTLP receiver, once the service has exited.
A control run without the ``worker_exit`` hook shows what forked workers lost
before it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import oslo_messaging as om
import pytest
from oslo_config import cfg

from tests.base import write_config
from tests.figures import report
from tests.functional.rpc_env import register_messaging_opts
from tests.otlp_receiver import OTLPReceiver
from tests.services import RABBIT_URL, require_service

PART = "3 shutdown"
N = 200
HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVICE = os.path.join(os.path.dirname(__file__), "sigterm_service.py")


def _store_count(path: str, name: str) -> int:
    if not os.path.exists(path):
        return 0
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM spans WHERE name = ?",
                              (name,)).fetchone()[0])


def run_service(tmpdir: str, backend: str, launcher: str, connection: str,
                control: bool = False) -> tuple[int, float, str]:
    """Start the service, make N calls, SIGTERM it; (exit code, exit seconds, stderr)."""
    topic = f"os-trace-sigterm-{uuid.uuid4().hex[:8]}"
    workers = 2 if launcher == "process" else 1
    path = write_config(os.path.join(tmpdir, f"{topic}.conf"), {
        "enabled": True, "connection_string": connection, "export_timeout": 2.0,
        "shutdown_timeout": 5.0}, DEFAULT={"transport_url": RABBIT_URL,
                                            "graceful_shutdown_timeout": 30})
    env = {**os.environ, "PYTHONPATH": HERE, "OTEL_BSP_SCHEDULE_DELAY": "5000"}
    if control:
        env["OS_TRACE_NO_EXIT_FLUSH"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-W", "ignore", SERVICE, backend, launcher, str(workers), path,
         topic], cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True)
    try:
        for _ in range(workers):
            line = proc.stdout.readline() if proc.stdout else ""
            if not line.startswith("READY"):
                proc.kill()
                raise AssertionError(f"service did not start: {line!r} "
                                     f"{proc.communicate(timeout=10)[1][-3000:]}")
        conf = cfg.ConfigOpts()
        conf([], project="sigterm-caller")
        register_messaging_opts(conf)
        transport = om.get_rpc_transport(conf, url=RABBIT_URL)
        try:
            client = om.get_rpc_client(transport, om.Target(topic=topic), timeout=30)
            for i in range(N):
                assert client.call({}, "echo", value=i) == i
        finally:
            transport.cleanup()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # what systemd and oslo.service send
        _, err = proc.communicate(timeout=60)
        return proc.returncode, time.monotonic() - t0, err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


CASES = [(b, launcher) for b in ("THREADING", "EVENTLET") for launcher in ("service", "process")]


@pytest.mark.slow
@pytest.mark.parametrize("backend,launcher", CASES)
@pytest.mark.parametrize("sink", ["store", "otlp"])
def test_sigterm_flushes_every_span(tmp_path: object, backend: str, launcher: str,
                                    sink: str) -> None:
    require_service("rabbitmq")
    tmpdir = str(tmp_path)
    store = os.path.join(tmpdir, "spans.db")
    receiver = OTLPReceiver().start() if sink == "otlp" else None
    try:
        connection = (f"otlp://{receiver.endpoint}" if receiver is not None
                      else f"sqlite:///{store}")
        code, took, err = run_service(tmpdir, backend, launcher, connection)
        if receiver is not None:
            seen = len([s for s in receiver.wait_for(N, timeout=5) if s.name == "echo process"])
        else:
            seen = _store_count(store, "echo process")
    finally:
        if receiver is not None:
            receiver.stop()
    kind = "ServiceLauncher" if launcher == "service" else "ProcessLauncher workers=2"
    report(PART, f"SIGTERM {backend.lower()} {kind} -> {sink}", calls=N, spans_seen=seen,
           spans_lost=N - seen, exit_s=took)
    assert "Traceback" not in err, err[-3000:]
    assert seen == N, f"{seen} of {N} server spans after SIGTERM; {err[-2000:]}"


@pytest.mark.slow
def test_control_without_the_worker_exit_hook_loses_spans(tmp_path: object) -> None:
    """The same forked workers without the fix: the last batch goes with os._exit."""
    require_service("rabbitmq")
    store = os.path.join(str(tmp_path), "spans.db")
    run_service(str(tmp_path), "THREADING", "process", f"sqlite:///{store}", control=True)
    seen = _store_count(store, "echo process")
    report(PART, "control: forked workers without the worker_exit hook", calls=N,
           spans_seen=seen, spans_lost=N - seen)
    assert seen < N


@pytest.mark.slow
def test_sigterm_with_a_black_holing_collector_exits_within_the_deadline(
        tmp_path: object) -> None:
    """A collector that never answers holds a worker's exit for at most
    ``shutdown_timeout`` (5 s here), not for export_timeout x retries x batches."""
    require_service("rabbitmq")
    with OTLPReceiver() as receiver:
        receiver.set_fault("blackhole")
        code, took, err = run_service(str(tmp_path), "THREADING", "process",
                                      f"otlp://{receiver.endpoint}")
    report(PART, "SIGTERM threading ProcessLauncher workers=2 -> black hole", calls=N,
           exit_s=took, shutdown_timeout_s=5.0)
    assert took < 5.0 + 5.0, f"exit took {took:.1f} s"
