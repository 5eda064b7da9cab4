"""Patch: symmetric, idempotent, inert when someone wrapped over it; handoff.wrap."""

from __future__ import annotations

import concurrent.futures
import unittest
from collections.abc import Callable
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from os_trace_plugins.rpc import handoff
from os_trace_plugins.rpc._patch import Patch


class Base:
    def hello(self) -> str:
        return "base"


class Child(Base):
    pass


def tagging(original: Callable[..., Any], patch: Patch) -> Callable[..., Any]:
    def wrapper(self: Any) -> str:
        if not patch.active:
            return str(original(self))
        return "wrapped " + original(self)
    return wrapper


class PatchTest(unittest.TestCase):

    def test_owned_attribute_restored(self) -> None:
        original = Base.__dict__["hello"]
        patch = Patch(Base, "hello", tagging)
        patch.apply()
        patch.apply()
        self.assertEqual(Base().hello(), "wrapped base")
        patch.remove()
        patch.remove()
        self.assertIs(Base.__dict__["hello"], original)

    def test_inherited_attribute_uncovered_again(self) -> None:
        patch = Patch(Child, "hello", tagging)
        patch.apply()
        self.assertEqual(Child().hello(), "wrapped base")
        self.assertEqual(Base().hello(), "base")
        patch.remove()
        self.assertNotIn("hello", Child.__dict__)

    def test_inert_under_a_foreign_wrapper(self) -> None:
        original = Base.__dict__["hello"]
        patch = Patch(Base, "hello", tagging)
        patch.apply()
        ours = Base.__dict__["hello"]
        Base.hello = lambda self: "theirs+" + ours(self)  # type: ignore[method-assign]
        try:
            patch.remove()
            self.assertEqual(Base().hello(), "theirs+base")
        finally:
            Base.hello = original  # type: ignore[method-assign]


class HandoffTest(unittest.TestCase):

    def test_wrap_carries_and_restores_context(self) -> None:
        span = NonRecordingSpan(SpanContext(7, 9, False, TraceFlags(1)))
        token = context.attach(trace.set_span_in_context(span))
        try:
            fn = handoff.wrap(lambda: trace.get_current_span().get_span_context().span_id)
        finally:
            context.detach(token)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            self.assertEqual(pool.submit(fn).result(), 9)
            after = pool.submit(lambda: trace.get_current_span().get_span_context()).result()
            self.assertFalse(after.is_valid)
            executor = handoff.ContextExecutor(pool)
            token = context.attach(trace.set_span_in_context(span))
            try:
                got = list(executor.map(
                    lambda _: trace.get_current_span().get_span_context().trace_id, [1, 2]))
            finally:
                context.detach(token)
        self.assertEqual(got, [7, 7])
