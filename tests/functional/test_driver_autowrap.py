"""Automatic wrapping through a REAL stevedore entry point and oslo_utils.importutils.

A throw-away distribution (``*.dist-info`` with an ``entry_points.txt``) is
written to a temporary directory put on ``sys.path``: stevedore finds it
through importlib.metadata exactly as it finds a vendor's driver package.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from typing import Any

from oslo_utils import importutils
from stevedore import driver as st_driver
from stevedore import extension as st_extension

from os_trace_plugins import _hooks
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.drivers._hook import DriverHook
from tests import base
from tests.functional._driver_sample import SampleDriver, Widget

SAMPLE = "tests.functional._driver_sample"


class TestStevedoreAndImportutils(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        suffix = uuid.uuid4().hex[:8]
        self.ns = f"os_trace_plugins.test_drivers_{suffix}"
        self.other_ns = f"os_trace_plugins.untraced_{suffix}"
        dist = os.path.join(self.tmpdir, f"sample_drivers_{suffix}-1.0.dist-info")
        os.makedirs(dist)
        with open(os.path.join(dist, "METADATA"), "w", encoding="utf-8") as f:
            f.write(f"Metadata-Version: 2.1\nName: sample-drivers-{suffix}\nVersion: 1.0\n")
        with open(os.path.join(dist, "entry_points.txt"), "w", encoding="utf-8") as f:
            f.write(f"[{self.ns}]\nsample = {SAMPLE}:SampleDriver\n"
                    f"factory = {SAMPLE}:Widget.__getattr__\n\n"
                    f"[{self.other_ns}]\nsample = {SAMPLE}:SampleDriver\n")
        sys.path.insert(0, self.tmpdir)
        self.addCleanup(sys.path.remove, self.tmpdir)
        self.originals = {
            "load": st_extension.ExtensionManager.__dict__["_load_one_plugin"],
            **{name: getattr(importutils, name) for name in
               ("import_class", "import_object", "import_object_ns", "import_module")},
        }
        self.hook = DriverHook()
        self.addCleanup(self.hook.uninstrument)

    def instrument(self) -> None:
        self.bind(driver_namespaces=[self.ns, SAMPLE])
        self.hook.instrument(self.conf)

    def test_driver_manager_invoke_on_load(self) -> None:
        self.instrument()
        mgr = st_driver.DriverManager(self.ns, "sample", invoke_on_load=True,
                                      invoke_kwds={"host": "node7"})
        d = mgr.driver
        self.assertIsInstance(d, SampleDriver)
        self.assertEqual(d.host, "node7")
        # DriverManager.__call__(func, ...) hands the extension (and its wrapped obj)
        self.assertEqual(mgr(lambda ext, *a: ext.obj.spawn(*a), "ctx", "vm")["instance"],
                         "vm")
        d.spawn("ctx", "vm2")
        spans = [s for s in self.spans() if s.name == "sample.spawn"]
        self.assertEqual(len(spans), 2)
        attrs = dict(spans[0].attributes or {})
        self.assertEqual(attrs["openstack.driver.namespace"], self.ns)
        self.assertEqual(attrs["openstack.driver.name"], "sample")

    def test_plugin_class_is_wrapped_when_not_invoked(self) -> None:
        self.instrument()
        mgr = st_driver.DriverManager(self.ns, "sample")
        cls = mgr.driver
        self.assertTrue(issubclass(cls, SampleDriver))
        cls("n").spawn("c", "vm")
        self.span("sample.spawn")

    def test_extension_manager_and_unlisted_namespace(self) -> None:
        self.instrument()
        mgr = st_extension.ExtensionManager(self.ns, invoke_on_load=False)
        by_name = {e.name: e for e in mgr}
        self.assertTrue(issubclass(by_name["sample"].plugin, SampleDriver))
        self.assertIsNot(by_name["sample"].plugin, SampleDriver)
        # a factory function is left alone
        self.assertIs(by_name["factory"].plugin, Widget.__getattr__)
        other = st_driver.DriverManager(self.other_ns, "sample", invoke_on_load=True)
        self.assertIs(type(other.driver), SampleDriver)  # not listed: untouched
        other.driver.spawn("c", "vm")
        self.assertEqual(self.spans(), [])

    def test_switch_off_at_load_then_on(self) -> None:
        self.instrument()
        SWITCHES.set("trace_drivers", False)
        d = st_driver.DriverManager(self.ns, "sample", invoke_on_load=True).driver
        d.spawn("c", "vm")
        self.assertEqual(self.spans(), [])
        SWITCHES.set("trace_drivers", True)
        d.spawn("c", "vm")
        self.span("sample.spawn")

    def test_not_instrumented_means_not_wrapped(self) -> None:
        d = st_driver.DriverManager(self.ns, "sample", invoke_on_load=True).driver
        self.assertIs(type(d), SampleDriver)
        self.assertIs(importutils.import_object(f"{SAMPLE}.SampleDriver").__class__,
                      SampleDriver)

    def test_importutils(self) -> None:
        self.instrument()
        obj = importutils.import_object(f"{SAMPLE}.SampleDriver", "node3")
        self.assertIsInstance(obj, SampleDriver)
        obj.spawn("c", "vm")
        cls = importutils.import_class(f"{SAMPLE}.SampleDriver")
        self.assertTrue(issubclass(cls, SampleDriver))
        ns_obj = importutils.import_object_ns("tests.functional", "_driver_sample.Widget")
        self.assertEqual(ns_obj.ping(), "pong")
        mod = importutils.import_module(SAMPLE)
        self.assertIs(mod.SampleDriver, SampleDriver)
        self.assertIs(importutils.import_class("json.JSONDecoder"), json.JSONDecoder)
        names = [s.name for s in self.spans()]
        self.assertEqual(names, ["SampleDriver.spawn", "Widget.ping"])

    def test_uninstrument_restores_exactly(self) -> None:
        self.instrument()
        self.assertIsNot(st_extension.ExtensionManager.__dict__["_load_one_plugin"],
                         self.originals["load"])
        self.assertIsNot(importutils.import_object, self.originals["import_object"])
        self.hook.uninstrument()
        self.assertIs(st_extension.ExtensionManager.__dict__["_load_one_plugin"],
                      self.originals["load"])
        for name in ("import_class", "import_object", "import_object_ns", "import_module"):
            self.assertIs(getattr(importutils, name), self.originals[name])
        self.assertNotIn("_load_one_plugin", st_driver.DriverManager.__dict__)
        d = st_driver.DriverManager(self.ns, "sample", invoke_on_load=True).driver
        self.assertIs(type(d), SampleDriver)

    def test_uninstrument_under_another_wrapper_removes_only_ours(self) -> None:
        import wrapt

        self.instrument()
        calls: list[str] = []

        def theirs(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            calls.append(args[0])
            return wrapped(*args, **kwargs)

        wrapt.wrap_function_wrapper(importutils, "import_object", theirs)
        self.addCleanup(setattr, importutils, "import_object",
                        self.originals["import_object"])
        importutils.import_object(f"{SAMPLE}.SampleDriver").spawn("c", "vm")
        self.assertEqual(len(self.spans()), 1)
        self.hook.uninstrument()
        obj = importutils.import_object(f"{SAMPLE}.SampleDriver")
        self.assertIs(type(obj), SampleDriver)  # ours is inert
        obj.spawn("c", "vm")
        self.assertEqual(len(self.spans()), 1)
        self.assertEqual(len(calls), 2)  # theirs still runs

    def test_instrumenting_does_not_import_importutils(self) -> None:
        # (stevedore is imported by oslo.config itself, before any hook runs)
        import subprocess

        code = ("import sys\n"
                "from os_trace_plugins.drivers._hook import DriverHook\n"
                "from tests.base import make_conf\n"
                "DriverHook().instrument(make_conf(driver_namespaces=['x']))\n"
                "print('oslo_utils.importutils' in sys.modules)\n"
                "from oslo_utils import importutils\n"
                "print(type(importutils.import_class).__name__)\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60, cwd=os.path.dirname(os.path.dirname(
                                 os.path.dirname(os.path.abspath(__file__)))))
        self.assertEqual(out.stdout.split("\n")[:2], ["False", "FunctionWrapper"],
                         out.stderr)

    def test_no_namespaces_patches_nothing(self) -> None:
        self.hook.instrument(self.conf)
        self.assertIs(st_extension.ExtensionManager.__dict__["_load_one_plugin"],
                      self.originals["load"])

    def test_loaded_by_the_hook_entry_point(self) -> None:
        self.bind(driver_namespaces=[self.ns])
        hooks = _hooks.load_hooks(self.conf)
        self.assertIsInstance(hooks.get("drivers"), DriverHook)
        d = st_driver.DriverManager(self.ns, "sample", invoke_on_load=True).driver
        d.spawn("c", "vm")
        self.span("sample.spawn")

    def test_setup_end_to_end(self) -> None:
        import os_trace_plugins

        self.bind(enabled=True, connection_string="console://",
                  driver_namespaces=[self.ns])
        self.assertTrue(os_trace_plugins.setup(self.conf, service="nova-compute"))
        self.assertIn("drivers", _hooks.loaded_hooks())
        d = st_driver.DriverManager(self.ns, "sample", invoke_on_load=True).driver
        d.spawn("c", "vm")
        self.span("sample.spawn")
        os_trace_plugins.shutdown()
        self.assertIs(st_extension.ExtensionManager.__dict__["_load_one_plugin"],
                      self.originals["load"])


class TestSighup(base.TestCase):
    def test_trace_drivers_follows_mutate_config_files(self) -> None:
        from oslo_config import cfg

        from os_trace_plugins import _switches, opts
        from os_trace_plugins.drivers import trace_driver

        path = self.config_file({"trace_drivers": True, "driver_root_spans": True,
                                 "trace_driver_arguments": False})
        conf = cfg.ConfigOpts()
        opts.register_opts(conf)
        conf(args=[], project="os-trace-test", default_config_files=[path])
        _switches.bind(conf)
        d = trace_driver(SampleDriver(), "compute")
        d.spawn("c", "vm")
        self.assertEqual(len(self.spans()), 1)
        self.config_file({"trace_drivers": False})
        conf.mutate_config_files()
        d.spawn("c", "vm")
        self.assertEqual(len(self.spans()), 1)
        self.config_file({"trace_drivers": True, "trace_driver_arguments": True})
        conf.mutate_config_files()
        d.spawn("c", "vm")
        spans = self.spans()
        self.assertEqual(len(spans), 2)
        self.assertEqual(dict(spans[1].attributes or {})["openstack.arg.instance"], "'vm'")
