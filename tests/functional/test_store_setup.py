"""setup() with the embedded store: default path, batch export off the request path."""

from __future__ import annotations

import os
import sqlite3
import time
from unittest import mock

from opentelemetry import trace
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import os_trace_plugins
from os_trace_plugins import _setup
from os_trace_plugins.export._bounded import BoundedProcessor
from os_trace_plugins.store._exporter import SQLiteSpanExporter
from os_trace_plugins.store._reader import StoreReader
from tests.base import TestCase


class StoreSetupTest(TestCase):
    def test_default_connection_string_creates_the_state_dir(self) -> None:
        state = os.path.join(self.tmpdir, "fresh", "state")
        self.conf.set_override("enabled", True, group="profiler")
        with mock.patch.dict(os.environ, {"OS_TRACE_STATE_DIR": state}):
            self.assertTrue(os_trace_plugins.setup(self.conf, service="nova-api"))
            processor = _setup._state["processor"]
            self.assertIsInstance(processor, BoundedProcessor)  # over the SDK's batch one
            self.assertIsInstance(processor.batch, BatchSpanProcessor)
            with trace.get_tracer("t").start_as_current_span("GET /") as span:
                trace_id = f"{span.get_span_context().trace_id:032x}"
            os_trace_plugins.shutdown()
        with StoreReader(os.path.join(state, "spans.db")) as reader:
            [t] = reader.list_traces()
        self.assertEqual((t.trace_id, t.root_name), (trace_id, "GET /"))

    def test_a_locked_store_never_blocks_the_request_path(self) -> None:
        store = os.path.join(self.tmpdir, "spans.db")
        SQLiteSpanExporter(store).export([])  # create it
        self.conf.set_override("enabled", True, group="profiler")
        self.conf.set_override("connection_string", f"sqlite:///{store}",
                               group="profiler")
        self.assertTrue(os_trace_plugins.setup(self.conf, service="svc"))
        locker = sqlite3.connect(store, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            tracer = trace.get_tracer("t")
            t0 = time.perf_counter()
            for i in range(600):  # more than one batch
                with tracer.start_as_current_span(f"request {i}"):
                    pass
            elapsed = time.perf_counter() - t0
        finally:
            locker.execute("COMMIT")
            locker.close()
        self.assertLess(elapsed, 1.0, "span ends waited for the store")
        os_trace_plugins.shutdown()  # flushes: the spans wait for the lock, then land
        with StoreReader(store) as reader:
            self.assertEqual(reader.count_traces(), 600)
