"""Hooks by entry point: a third-party distribution adds one by metadata alone."""

from __future__ import annotations

import logging
import os
import sys
import textwrap

from opentelemetry import trace

import os_trace_plugins
from os_trace_plugins import _hooks
from os_trace_plugins._switches import SWITCHES
from tests.base import TestCase, make_conf

HOOK_MODULE = '''
"""A vendor's own hook, shipped in its own distribution, on the public API only."""
from opentelemetry import trace
from os_trace_plugins.hooks import SWITCHES, Hook


class VendorHook(Hook):
    name = "vendor"
    option = "trace_drivers"   # follows an existing mutable switch

    def _instrument(self):
        # applied when the service imports the client module, not before
        self.patch("vendor_trace_hook.client", "Client.request", self._traced)

    def _traced(self, wrapped, instance, args, kwargs):
        if not SWITCHES.trace_drivers:
            return wrapped(*args, **kwargs)
        with self.tracer.start_as_current_span("vendor.call",
                                               kind=trace.SpanKind.INTERNAL):
            return wrapped(*args, **kwargs)


class NotAHook:
    pass
'''

CLIENT_MODULE = '''
"""The vendor's library: what the hook instruments."""


class Client:
    def request(self, x):
        return x * 2
'''


class TestThirdPartyHook(TestCase):
    def setUp(self) -> None:
        super().setUp()
        root = os.path.join(self.tmpdir, "site")
        pkg = os.path.join(root, "vendor_trace_hook")
        dist = os.path.join(root, "vendor_trace_hook-1.0.dist-info")
        os.makedirs(pkg)
        os.makedirs(dist)
        with open(os.path.join(pkg, "__init__.py"), "w") as f:
            f.write(HOOK_MODULE)
        with open(os.path.join(pkg, "client.py"), "w") as f:
            f.write(CLIENT_MODULE)
        with open(os.path.join(dist, "METADATA"), "w") as f:
            f.write("Metadata-Version: 2.1\nName: vendor-trace-hook\nVersion: 1.0\n")
        with open(os.path.join(dist, "entry_points.txt"), "w") as f:
            f.write(textwrap.dedent("""\
                [os_trace_plugins.hooks]
                vendor = vendor_trace_hook:VendorHook
                zz_missing = vendor_trace_hook_missing.module:Hook
                zz_not_a_hook = vendor_trace_hook:NotAHook
                """))
        sys.path.insert(0, root)
        self.addCleanup(sys.path.remove, root)
        self.addCleanup(sys.modules.pop, "vendor_trace_hook", None)
        self.addCleanup(sys.modules.pop, "vendor_trace_hook.client", None)

    def test_setup_loads_the_third_party_hook_and_survives_broken_ones(self) -> None:
        conf = make_conf(enabled=True, connection_string="console://")
        with self.assertLogs("os_trace_plugins", logging.INFO) as logs:
            self.assertTrue(os_trace_plugins.setup(conf, service="vendor-svc"))
        text = "\n".join(logs.output)
        self.assertIn("hook 'zz_missing'", text)
        self.assertIn("vendor_trace_hook_missing", text)
        self.assertIn("hook 'zz_not_a_hook' failed to instrument", text)
        self.assertIn("vendor", _hooks.loaded_hooks())
        self.assertNotIn("zz_missing", _hooks.loaded_hooks())
        # instrumenting imported nothing of the library it patches
        self.assertNotIn("vendor_trace_hook.client", sys.modules)
        from vendor_trace_hook import client  # type: ignore[import-not-found]
        original = client.Client.__dict__["request"].__wrapped__

        # setup() reused the test's provider (a host provider), so the span
        # lands in the in-memory exporter
        with self.tracer.start_as_current_span("request") as parent:
            self.assertEqual(client.Client().request(21), 42)
        span = self.span("vendor.call")
        self.assertChildOf(span, self.span("request"))
        self.assertEqual(span.kind, trace.SpanKind.INTERNAL)
        del parent

        SWITCHES.set("trace_drivers", False)  # live switch: pass straight through
        self.assertEqual(client.Client().request(1), 2)
        self.assertEqual(len([s for s in self.spans() if s.name == "vendor.call"]), 1)

        os_trace_plugins.shutdown()
        self.assertEqual(_hooks.loaded_hooks(), {})
        self.assertIs(client.Client.__dict__["request"], original)

    def test_disabled_loads_no_hook(self) -> None:
        conf = make_conf(enabled=False)
        self.assertFalse(os_trace_plugins.setup(conf))
        self.assertEqual(_hooks.loaded_hooks(), {})
