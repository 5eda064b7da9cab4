"""Helpers of the threads tests: the hook under test, and child processes.

Tests that depend on process-wide choices (eventlet monkey patching,
oslo.service's backend, a peer instrumentation that selects a backend when
instrumented) run their scenario in a child process: ``run_child(fn_path)``
runs ``tests.functional.<module>.<fn>()`` there with an in-memory exporter
and returns the finished spans as dicts (name, trace_id, span_id, parent,
attributes) by name (a repeated name gets ``#2``, ``#3``...), plus whatever
the child printed under ``"result"``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from opentelemetry import trace

from os_trace_plugins import _hooks
from os_trace_plugins.threads import ThreadsHook
from tests.base import TestCase

__all__ = ["ThreadsTestCase", "run_child", "child_main", "emit", "current_span_id", "ROOT"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def current_span_id() -> int:
    """The current span's id (0 outside any span)."""
    return trace.get_current_span().get_span_context().span_id


class ThreadsTestCase(TestCase):
    """The shared threads hook, instrumented for the test and removed after."""

    def setUp(self) -> None:
        super().setUp()
        self.hook = _hooks.shared(ThreadsHook)
        self.hook.instrument(self.conf, self.provider)
        self.addCleanup(self.hook.uninstrument)

    def work(self, name: str) -> Any:
        def fn() -> int:
            with self.tracer.start_as_current_span(name):
                return current_span_id()
        return fn


def run_child(target: str, *, eventlet: bool = False, timeout: float = 90,
              env: dict[str, str] | None = None) -> tuple[dict[str, dict[str, Any]], Any]:
    """Run ``target`` ("module:function") in a child; its spans by name, its result."""
    prelude = "import eventlet; eventlet.monkey_patch(); " if eventlet else ""
    module, _, fn = target.partition(":")
    code = (prelude + "from tests.functional.threads_env import child_main; "
            f"child_main({module!r}, {fn!r})")
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"child {target} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    spans: dict[str, dict[str, Any]] = {}
    result: Any = None
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue
        item = json.loads(line)
        if "result" in item:
            result = item["result"]
        else:
            key, n = item["name"], 1
            while key in spans:  # a second span of that name: "name#2"
                n += 1
                key = f"{item['name']}#{n}"
            spans[key] = item
    return spans, result


def emit(result: Any) -> None:
    """Hand a JSON-able value back to :func:`run_child`."""
    print(json.dumps({"result": result}), flush=True)


def child_main(module: str, fn: str) -> None:
    """In the child: a provider with an in-memory exporter, run, print spans."""
    import importlib

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    getattr(importlib.import_module(module), fn)(provider)
    for s in exporter.get_finished_spans():
        assert s.context is not None
        print(json.dumps({"name": s.name, "trace_id": s.context.trace_id,
                          "span_id": s.context.span_id,
                          "parent": s.parent.span_id if s.parent else None,
                          "attributes": dict(s.attributes or {})}), flush=True)
