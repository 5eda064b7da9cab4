"""The one patching mechanism: post-import wrapt wrappers, removal of our own only."""

from __future__ import annotations

import os
import sys
import tempfile
import types
import unittest
from collections.abc import Callable
from typing import Any

import wrapt

from os_trace_plugins import _hooks
from os_trace_plugins._patching import Patch, when_imported

_counter = [0]


def _new_module_name() -> str:
    _counter[0] += 1
    return f"os_trace_test_target_{_counter[0]}"


def _module_source() -> str:
    return (
        "class Base:\n"
        "    def inherited(self, x):\n"
        "        return ('base', x)\n"
        "class Service(Base):\n"
        "    def call(self, x):\n"
        "        return x + 1\n"
        "def function(x):\n"
        "    return x * 10\n"
    )


def _make_module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(_module_source(), module.__dict__)
    return module


def recorder(calls: list[Any], tag: str = "ours") -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        calls.append((tag, instance is not None, args))
        return wrapped(*args, **kwargs)
    return wrapper


class TestPatch(unittest.TestCase):
    def setUp(self) -> None:
        self.name = _new_module_name()
        root = tempfile.mkdtemp(prefix="os-trace-patching-")
        with open(os.path.join(root, f"{self.name}.py"), "w", encoding="utf-8") as f:
            f.write(_module_source())
        sys.path.insert(0, root)
        self.addCleanup(sys.path.remove, root)
        self.addCleanup(sys.modules.pop, self.name, None)

    def imported(self) -> Any:
        import importlib
        return importlib.import_module(self.name)

    def test_deferred_until_the_module_is_imported(self) -> None:
        calls: list[Any] = []
        patch = Patch(self.name, "Service.call", recorder(calls))
        patch.apply()
        self.assertNotIn(self.name, sys.modules, "applying imported the target")
        self.assertFalse(patch.applied)
        module = self.imported()
        self.assertTrue(patch.applied)
        self.assertEqual(module.Service().call(1), 2)
        self.assertEqual(calls, [("ours", True, (1,))])

    def test_applied_at_once_when_already_imported_and_removed_exactly(self) -> None:
        module = self.imported()
        original = module.Service.__dict__["call"]
        calls: list[Any] = []
        patch = Patch(self.name, "Service.call", recorder(calls))
        patch.apply()
        patch.apply()  # idempotent: one wrapper
        self.assertIsInstance(module.Service.__dict__["call"], wrapt.FunctionWrapper)
        self.assertEqual(module.Service().call(2), 3)
        self.assertEqual(len(calls), 1)
        patch.remove()
        patch.remove()
        self.assertIs(module.Service.__dict__["call"], original)
        self.assertEqual(module.Service().call(2), 3)
        self.assertEqual(len(calls), 1)

    def test_inherited_method_is_uncovered_again(self) -> None:
        module = self.imported()
        calls: list[Any] = []
        patch = Patch(self.name, "Service.inherited", recorder(calls))
        patch.apply()
        self.assertEqual(module.Service().inherited(5), ("base", 5))
        self.assertEqual(len(calls), 1)
        patch.remove()
        self.assertNotIn("inherited", module.Service.__dict__)
        self.assertIs(module.Service.inherited, module.Base.inherited)

    def test_someone_wrapping_on_top_keeps_working_and_ours_goes_inert(self) -> None:
        module = self.imported()
        calls: list[Any] = []
        ours = Patch(self.name, "function", recorder(calls))
        ours.apply()
        wrapt.wrap_function_wrapper(module, "function", recorder(calls, "theirs"))
        self.assertEqual(module.function(1), 10)
        self.assertEqual([c[0] for c in calls], ["theirs", "ours"])
        ours.remove()
        calls.clear()
        self.assertEqual(module.function(2), 20)
        self.assertEqual([c[0] for c in calls], ["theirs"], "theirs must survive, ours inert")
        ours.apply()  # instrumenting again wraps once more, on top
        calls.clear()
        self.assertEqual(module.function(3), 30)
        self.assertEqual([c[0] for c in calls], ["ours", "theirs"])

    def test_ours_put_back_bound_by_a_foreign_unwrap_is_still_removed(self) -> None:
        module = self.imported()
        original = module.Service.__dict__["call"]
        ours = Patch(self.name, "Service.call", recorder([]))
        ours.apply()
        theirs = wrapt.FunctionWrapper(module.Service.call, recorder([], "theirs"))
        module.Service.call = theirs
        # what contrib's unwrap does: read through the class, put __wrapped__ back
        module.Service.call = module.Service.call.__wrapped__
        ours.remove()
        self.assertIs(module.Service.__dict__["call"], original)

    def test_ours_left_inert_then_unwrapped_by_them_is_peeled_on_the_next_apply(
            self) -> None:
        # contrib's requests uninstrument(): it was wrapped on top of ours,
        # ours was removed (inert, buried), then it unwrapped: our dead
        # wrapper is the attribute again; instrumenting and uninstrumenting
        # once more must leave the original, not our dead wrapper
        for how in ("function", "bound"):
            with self.subTest(how):
                module = self.imported()
                original = module.Service.__dict__["call"]
                ours = Patch(self.name, "Service.call", recorder([]))
                ours.apply()
                theirs = wrapt.FunctionWrapper(module.Service.call
                                               if how == "bound"
                                               else module.Service.__dict__["call"],
                                               recorder([], "theirs"))
                module.Service.call = theirs
                ours.remove()
                module.Service.call = theirs.__wrapped__  # their unwrap
                self.assertEqual(module.Service().call(1), 2)
                ours.apply()
                self.assertEqual(module.Service().call(1), 2)
                ours.remove()
                self.assertIs(module.Service.__dict__["call"], original)

    def test_cancelled_before_the_import_never_applies(self) -> None:
        calls: list[Any] = []
        patch = Patch(self.name, "function", recorder(calls))
        patch.apply()
        patch.remove()
        module = self.imported()
        self.assertNotIsInstance(module.function, wrapt.FunctionWrapper)
        self.assertEqual(module.function(1), 10)
        self.assertEqual(calls, [])

    def test_when_imported_callback_failure_is_contained(self) -> None:
        seen: list[str] = []

        def broken(module: Any) -> None:
            seen.append(module.__name__)
            raise RuntimeError("hook bug")

        cancel = when_imported(self.name, broken)
        with self.assertLogs("os_trace_plugins", "ERROR"):
            module = self.imported()  # the service's import must not fail
        self.assertEqual(seen, [self.name])
        self.assertEqual(module.function(1), 10)
        cancel()


class _CountHook(_hooks.Hook):
    name = "count"
    option = None
    module = ""

    def _instrument(self) -> None:
        self.patch(self.module, "function", self._wrap)

    def _wrap(self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
        with self.tracer.start_as_current_span("counted"):
            return wrapped(*args, **kwargs)


class TestSharedHookAndInstrumentor(unittest.TestCase):
    def setUp(self) -> None:
        self.name = _new_module_name()
        sys.modules[self.name] = _make_module(self.name)
        self.addCleanup(sys.modules.pop, self.name, None)
        hook_cls = type("CountHook", (_CountHook,), {"module": self.name})
        self.instrumentor_cls = type("CountInstrumentor", (_hooks.HookInstrumentor,),
                                     {"hook_class": hook_cls})
        self.hook_cls = hook_cls
        self.addCleanup(lambda: _hooks.shared(hook_cls).uninstrument())

    def wrappers(self) -> int:
        fn, count = sys.modules[self.name].function, 0
        while isinstance(fn, wrapt.FunctionWrapper):  # wrapt 1.x has no wrapper_chain()
            count, fn = count + 1, fn.__wrapped__
        return count

    def test_instrument_and_uninstrument_from_different_instances(self) -> None:
        self.instrumentor_cls().instrument()
        self.assertEqual(self.wrappers(), 1)
        self.instrumentor_cls().uninstrument()
        self.assertEqual(self.wrappers(), 0, "another instance left the wrapper in place")

    def test_never_stacks(self) -> None:
        self.instrumentor_cls().instrument()
        self.instrumentor_cls().instrument()
        _hooks.shared(self.hook_cls).instrument()  # what setup()'s loader uses
        self.assertEqual(self.wrappers(), 1)
        self.assertIs(self.instrumentor_cls().hook, _hooks.shared(self.hook_cls))


if __name__ == "__main__":
    unittest.main()
