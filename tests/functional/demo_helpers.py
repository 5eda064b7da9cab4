"""Running ``os-trace demo`` in a subprocess for the demo tests (bounded in time)."""

from __future__ import annotations

import os
import subprocess
import sys

from os_trace_plugins.report._model import Trace
from os_trace_plugins.store._reader import StoreReader

__all__ = ["ROOT", "run_demo_cli", "traces_of"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_demo_cli(store: str, *extra: str, timeout: float = 120,
                 ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=ROOT, OS_TRACE_STATE_DIR=os.path.dirname(store))
    return subprocess.run([sys.executable, "-m", "os_trace_plugins.cmd._main", "demo",
                           "--store", store, "--color", "never", *extra],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def traces_of(store: str) -> list[Trace]:
    """Every trace of the store, oldest first."""
    with StoreReader(store) as reader:
        rows = reader.list_traces(limit=1000)
        return [Trace.from_dicts(reader.spans(t.trace_id)) for t in reversed(rows)]
