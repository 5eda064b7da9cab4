"""The oslo.service points the ``worker_exit`` hook patches still exist.

They are private (docs/zero-code.md, "Private APIs"): if oslo.service renames
them, the hook would quietly patch nothing and a forked worker would lose its
last batch of spans again, so this fails loudly instead.
"""

from __future__ import annotations

import importlib
import unittest

from wrapt import FunctionWrapper

from os_trace_plugins._hooks import shared
from os_trace_plugins.export._exit import PATCHES, WorkerExitHook


def _resolve(module: str, path: str) -> object:
    """The attribute as stored on its class (not bound)."""
    owner: object = importlib.import_module(module)
    *outer, last = path.split(".")
    for part in outer:
        owner = getattr(owner, part)
    return vars(owner)[last]


class WorkerExitPointsTest(unittest.TestCase):
    def test_each_point_exists_in_the_installed_oslo_service(self) -> None:
        for module, path in PATCHES:
            with self.subTest(point=f"{module}.{path}"):
                self.assertTrue(callable(_resolve(module, path)),
                                f"oslo.service changed: {module}.{path} is gone")

    def test_the_hook_wraps_each_point_and_unwraps_it(self) -> None:
        hook = shared(WorkerExitHook)
        was = hook.instrumented
        hook.uninstrument()
        try:
            hook.instrument()
            for module, path in PATCHES:
                with self.subTest(point=path):
                    self.assertIsInstance(_resolve(module, path), FunctionWrapper)
            hook.uninstrument()
            for module, path in PATCHES:
                with self.subTest(point=path, state="removed"):
                    self.assertNotIsInstance(_resolve(module, path), FunctionWrapper)
        finally:
            if was:
                hook.instrument()
            else:
                hook.uninstrument()
