"""Which namespaces and import paths the automatic wrapping applies to."""

from __future__ import annotations

import functools
import unittest

from opentelemetry import trace

from os_trace_plugins.drivers._autowrap import AutoWrapper


class TestMatching(unittest.TestCase):
    def setUp(self) -> None:
        self.auto = AutoWrapper([" nova.compute.drivers ", "", "cinder.volume.drivers"],
                                trace.NoOpTracer())

    def test_namespaces_exact(self) -> None:
        self.assertEqual(self.auto.namespaces,
                         ("nova.compute.drivers", "cinder.volume.drivers"))
        self.assertTrue(self.auto.matches_namespace("nova.compute.drivers"))
        self.assertFalse(self.auto.matches_namespace("nova.compute"))
        self.assertFalse(self.auto.matches_namespace(None))

    def test_import_path_prefixes(self) -> None:
        m = self.auto.matches_path
        self.assertTrue(m("cinder.volume.drivers"))
        self.assertTrue(m("cinder.volume.drivers.lvm.LVMVolumeDriver"))
        self.assertTrue(m("cinder.volume.drivers:LVMVolumeDriver"))
        self.assertFalse(m("cinder.volume.drivers_extra.X"))
        self.assertFalse(m("cinder.volume"))
        self.assertFalse(m(42))

    def test_non_drivers_left_alone(self) -> None:
        def factory() -> None:
            pass
        for obj in (None, factory, len, functools.partial(factory)):
            with self.subTest(obj=obj):
                self.assertIs(self.auto.wrap(obj, "x", "ns"), obj)

    def test_nothing_listed_patches_nothing(self) -> None:
        auto = AutoWrapper([], trace.NoOpTracer())
        asked: list[tuple[str, str]] = []
        auto.install(lambda module, path, wrapper: asked.append((module, path)))
        self.assertEqual(asked, [])
        AutoWrapper(["x"], trace.NoOpTracer()).install(
            lambda module, path, wrapper: asked.append((module, path)))
        self.assertEqual(asked[0], ("stevedore.extension",
                                    "ExtensionManager._load_one_plugin"))
        self.assertEqual(len(asked), 5)
