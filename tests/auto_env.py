"""Run a program the way an operator does: ``opentelemetry-instrument <program>``.

Shared by tests/functional/test_auto_*.py and tests/services/.  The venv also
holds the bench peers (opentelemetry-instrumentation-oslo-messaging,
-oslo-service, -sqlalchemy): their distro, configurator and instrumentors are
switched off here so the tests see our activation only; their
pre-instrument hook (it selects an oslo.service backend and imports eventlet)
cannot be switched off by any variable, so :data:`SERVICE_BACKEND` pins it to
the backend the program under test uses.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from typing import Any

from os_trace_plugins.store._reader import StoreReader

__all__ = ["BIN", "OURS", "instrument_cmd", "otel_env", "run_instrumented", "stored_spans"]

BIN = os.path.dirname(sys.executable)
PEERS = "oslo_messaging,oslo_service,sqlalchemy"
#: every opentelemetry_instrumentor entry point of ours: disabled, the run is "without us"
OURS = ("os_trace_plugins,os_trace_plugins_rpc,os_trace_plugins_sqlalchemy,"
        "os_trace_plugins_threads,os_trace_plugins_wsgi_servers")


def instrument_cmd(*argv: str, layers: int = 1) -> list[str]:
    tool = shutil.which("opentelemetry-instrument", path=BIN)
    assert tool, "opentelemetry-instrument comes with the test extra"
    return [tool] * layers + list(argv)


def otel_env(backend: str = "threading", disabled: str = "", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OTEL_") and k != "OS_TRACE_PLUGINS_AUTO_CONF"}
    env.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none",
               OTEL_LOGS_EXPORTER="none", OTEL_PYTHON_DISTRO="distro",
               OTEL_PYTHON_CONFIGURATOR="configurator",
               OTEL_PYTHON_OSLO_SERVICE_BACKEND=backend,
               OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=",".join(
                   p for p in (PEERS, disabled) if p))
    env.update(extra)
    return env


def run_instrumented(argv: list[str], env: dict[str, str], layers: int = 1,
                     timeout: float = 60, cwd: str | None = None,
                     ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(instrument_cmd(*argv, layers=layers), env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def stored_spans(path: str) -> list[dict[str, Any]]:
    """Every span of every trace in the embedded store at ``path``."""
    if not os.path.exists(path):
        return []
    try:
        with StoreReader(path) as reader:
            traces = reader.list_traces(limit=10_000)
            return [s for t in traces for s in reader.spans(t.trace_id)]
    except sqlite3.Error:  # pragma: no cover - a store still being created
        return []
