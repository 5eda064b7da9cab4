"""trace_driver() on a sample driver: spans, behaviour kept, bad input."""

from __future__ import annotations

import asyncio
import copy
import pickle
import sys
import traceback
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.drivers import trace_driver
from tests import base
from tests.functional._driver_sample import BaseDriver, DriverError, SampleDriver
from tests.secret_values import DRIVER_PASSWORD


class TestInstanceWrapping(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.raw = SampleDriver()
        self.driver = trace_driver(self.raw, "compute")

    def test_sync_call_span(self) -> None:
        with self.tracer.start_as_current_span("request") as _:
            result = self.driver.spawn("ctx", "vm1", admin_password=DRIVER_PASSWORD)
        self.assertEqual(result, {"instance": "vm1", "auth_token": "tok-123"})
        span = self.span("compute.spawn")
        self.assertEqual(span.kind, SpanKind.INTERNAL)
        self.assertChildOf(span, self.span("request"))
        attrs = dict(span.attributes or {})
        self.assertEqual(attrs["code.function.name"],
                         "tests.functional._driver_sample.SampleDriver.spawn")
        self.assertEqual(attrs["openstack.driver.name"], "compute")
        self.assertNotIn("openstack.driver.method", attrs)  # in code.function.name
        # hidden by default
        self.assertFalse([k for k in attrs if k.startswith("openstack.arg")])
        self.assertNotIn("openstack.result", attrs)
        self.assertEqual(self.raw.calls, ["spawn"])

    def test_remote_is_client(self) -> None:
        trace_driver(SampleDriver(), "cinder", remote=True).spawn("c", "vm")
        self.assertEqual(self.span("cinder.spawn").kind, SpanKind.CLIENT)

    def test_default_name_is_class_name(self) -> None:
        trace_driver(SampleDriver()).spawn("c", "vm")
        self.span("SampleDriver.spawn")

    def test_arguments_revealed_by_switch_are_masked(self) -> None:
        SWITCHES.set("trace_driver_arguments", True)
        self.driver.spawn("ctx", "vm1", admin_password=DRIVER_PASSWORD,
                          connection_info={"data": {"auth_password": DRIVER_PASSWORD,
                                                    "target": "iqn.x"}})
        attrs = dict(self.span("compute.spawn").attributes or {})
        self.assertEqual(attrs["openstack.arg.admin_password"], "***")
        self.assertEqual(attrs["openstack.arg.instance"], "'vm1'")
        self.assertIn("'target': 'iqn.x'", attrs["openstack.arg.connection_info"])
        self.assertNotIn("chap", attrs["openstack.arg.connection_info"])
        self.assertNotIn("tok-123", attrs["openstack.result"])
        self.assertNotIn("openstack.arg.self", attrs)
        for value in attrs.values():
            self.assertNotIn(DRIVER_PASSWORD, str(value))

    def test_per_site_option_beats_switch(self) -> None:
        SWITCHES.set("trace_driver_arguments", True)
        trace_driver(SampleDriver(), "quiet", record_arguments=False).spawn("c", "vm")
        trace_driver(SampleDriver(), "loud", record_arguments=True,
                     record_result=False).spawn("c", "vm")
        SWITCHES.set("trace_driver_arguments", False)
        trace_driver(SampleDriver(), "loud2", record_arguments=True).spawn("c", "vm")
        quiet = dict(self.span("quiet.spawn").attributes or {})
        loud = dict(self.span("loud.spawn").attributes or {})
        loud2 = dict(self.span("loud2.spawn").attributes or {})
        self.assertNotIn("openstack.arg.instance", quiet)
        self.assertEqual(loud["openstack.arg.instance"], "'vm'")
        self.assertNotIn("openstack.result", loud)
        self.assertIn("openstack.result", loud2)

    def test_values_are_bounded(self) -> None:
        SWITCHES.set("trace_driver_arguments", True)
        SWITCHES.set("driver_argument_max_length", 32)
        self.driver.spawn("c", "x" * 5000)
        value = dict(self.span("compute.spawn").attributes or {})["openstack.arg.instance"]
        self.assertLess(len(value), 64)

    def test_exception_recorded_and_reraised_unchanged(self) -> None:
        try:
            self.driver.reboot("vm1")
        except DriverError as exc:
            frames = [f.name for f in traceback.extract_tb(exc.__traceback__)]
        else:
            self.fail("not raised")
        self.assertEqual(frames[-1], "reboot")  # the driver's own frame is last
        span = self.span("compute.reboot")
        self.assertEqual(span.status.status_code, StatusCode.ERROR)
        self.assertEqual(dict(span.attributes or {})["error.type"],
                         "tests.functional._driver_sample.DriverError")
        self.assertEqual(span.events[0].name, "exception")

    def test_same_exception_object(self) -> None:
        seen: list[BaseException] = []

        class Raiser:
            def go(self) -> None:
                err = KeyError("k")
                seen.append(err)
                raise err

        with self.assertRaises(KeyError) as caught:
            trace_driver(Raiser(), "r").go()
        self.assertIs(caught.exception, seen[0])

    def test_generator_spanned_until_exhausted(self) -> None:
        gen = self.driver.list_instances(3)
        self.assertEqual(self.spans(), [])  # nothing iterated yet
        first = next(gen)
        self.assertEqual(self.spans(), [])  # still running
        rest = list(gen)
        self.assertEqual([first] + rest, ["vm-0", "vm-1", "vm-2"])
        span = self.span("compute.list_instances")
        self.assertEqual(span.status.status_code, StatusCode.UNSET)

    def test_generator_closed_early_ends_span(self) -> None:
        gen = self.driver.list_instances(10)
        next(gen)
        gen.close()
        self.span("compute.list_instances")

    def test_generator_never_iterated_leaves_no_span(self) -> None:
        self.driver.list_instances(3)
        self.assertEqual(self.spans(), [])

    def test_generator_error_recorded(self) -> None:
        class Failing:
            def rows(self):  # type: ignore[no-untyped-def]
                yield 1
                raise DriverError("disk gone")

        gen = trace_driver(Failing(), "f").rows()
        self.assertEqual(next(gen), 1)
        with self.assertRaises(DriverError):
            next(gen)
        self.assertEqual(self.span("f.rows").status.status_code, StatusCode.ERROR)

    def test_async_method_spanned_over_await(self) -> None:
        async def main() -> str:
            with self.tracer.start_as_current_span("task"):
                return await self.driver.attach_volume("vol-1")
        self.assertEqual(asyncio.run(main()), "attached vol-1")
        self.assertChildOf(self.span("compute.attach_volume"), self.span("task"))

    def test_async_generator(self) -> None:
        async def main() -> list[int]:
            return [i async for i in self.driver.stream_events(3)]
        self.assertEqual(asyncio.run(main()), [0, 1, 2])
        self.span("compute.stream_events")

    def test_child_spans_nest_under_driver_span(self) -> None:
        tracer = self.tracer

        class Nested:
            def outer(self) -> None:
                with tracer.start_as_current_span("inner"):
                    pass

        trace_driver(Nested(), "n").outer()
        self.assertChildOf(self.span("inner"), self.span("n.outer"))

    def test_isinstance_and_attributes(self) -> None:
        d = self.driver
        self.assertIsInstance(d, SampleDriver)
        self.assertIsInstance(d, BaseDriver)  # ABCMeta
        self.assertEqual(d.host, "node1")
        self.assertEqual(d.node, "node1")  # property
        d.host = "node2"
        self.assertEqual(self.raw.host, "node2")
        d.extra = 1
        self.assertEqual(self.raw.extra, 1)  # type: ignore[attr-defined]
        del d.extra
        self.assertFalse(hasattr(self.raw, "extra"))
        self.assertEqual(d.capabilities, {"has_imagecache": True})
        self.assertEqual(d.version(), "1.0")
        self.assertEqual(d.default().host, "default")
        self.assertEqual(len(d), 7)
        self.assertEqual(d(4), 8)
        self.assertEqual(d, self.raw)
        self.assertEqual(hash(d), hash(self.raw))
        self.assertEqual(repr(d), repr(self.raw))
        self.assertIn("spawn", dir(d))
        self.assertFalse(hasattr(d, "__getitem__"))
        self.assertEqual(self.spans(), [])  # none of that was a traced method

    def test_private_and_dunders_untouched_unless_asked(self) -> None:
        self.assertEqual(self.driver._cleanup(), "private")
        self.assertEqual(self.spans(), [])
        d = trace_driver(SampleDriver(), "p", trace_private=True, methods=None)
        d._cleanup()
        self.span("p._cleanup")
        only = trace_driver(SampleDriver(), "o", methods=["__call__"])
        self.assertEqual(only(2), 4)
        only.spawn("c", "vm")
        self.assertEqual([s.name for s in self.spans()], ["p._cleanup", "o.__call__"])

    def test_fluent_return_of_self_stays_traced(self) -> None:
        self.assertIs(self.driver.chain(), self.driver)

    def test_copy_stays_traced_pickle_gives_bare_driver(self) -> None:
        clone = copy.copy(self.driver)
        self.assertIsNot(clone.__wrapped__, self.raw)
        clone.spawn("c", "vm")
        self.span("compute.spawn")
        restored = pickle.loads(pickle.dumps(self.driver))
        self.assertIs(type(restored), SampleDriver)

    def test_switch_off_passes_through_live(self) -> None:
        SWITCHES.set("trace_drivers", False)
        self.assertEqual(self.driver.spawn("c", "vm")["instance"], "vm")
        self.assertEqual(list(self.driver.list_instances(2)), ["vm-0", "vm-1"])
        with self.assertRaises(DriverError):
            self.driver.reboot("vm")
        self.assertEqual(self.spans(), [])
        SWITCHES.set("trace_drivers", True)
        self.driver.spawn("c", "vm")
        self.span("compute.spawn")

    def test_wrapping_twice_is_a_no_op(self) -> None:
        self.assertIs(trace_driver(self.driver, "again"), self.driver)
        self.driver.spawn("c", "vm")
        self.span("compute.spawn")


class TestClassAndModuleWrapping(base.TestCase):
    def test_class_becomes_traced_subclass(self) -> None:
        original = SampleDriver.__dict__["spawn"]
        Traced = trace_driver(SampleDriver, "compute")
        self.assertTrue(issubclass(Traced, SampleDriver))
        self.assertEqual(Traced.__qualname__, SampleDriver.__qualname__)
        self.assertIs(SampleDriver.__dict__["spawn"], original)
        d = Traced("node9")
        self.assertIsInstance(d, SampleDriver)
        self.assertEqual(d.node, "node9")
        self.assertEqual(Traced.version(), "1.0")
        self.assertEqual(Traced.default().host, "default")
        d.spawn("c", "vm")
        self.assertEqual(d.reboot.__name__, "reboot")
        self.span("compute.spawn")
        SampleDriver().spawn("c", "vm")  # the original class is untouched
        self.assertEqual(len(self.spans()), 1)

    def test_class_static_and_class_methods_when_asked(self) -> None:
        Traced = trace_driver(SampleDriver, "c", trace_static_methods=True,
                              trace_class_methods=True)
        self.assertEqual(Traced.version(), "1.0")
        self.assertEqual(Traced.default().host, "default")
        self.assertEqual(Traced("x").version(), "1.0")
        self.assertEqual([s.name for s in self.spans()],
                         ["c.version", "c.default", "c.version"])

    def test_module_functions(self) -> None:
        import json
        traced = trace_driver(json, "json")
        self.assertIsInstance(traced, type(json))
        self.assertEqual(traced.dumps({"a": 1}), '{"a": 1}')
        self.assertIs(traced.JSONDecoder, json.JSONDecoder)
        self.assertIs(sys.modules["json"], json)
        self.span("json.dumps")


class TestAbstractClasses(base.TestCase):
    def test_wrapping_an_abstract_base_keeps_it_abstract(self) -> None:
        Traced = trace_driver(BaseDriver, "base")
        with self.assertRaises(TypeError):
            Traced()
        Concrete = trace_driver(SampleDriver, "c")
        Concrete().spawn("c", "vm")
        self.span("c.spawn")


class TestGeneratorProtocol(base.TestCase):
    def test_send_and_throw_are_relayed(self) -> None:
        class Coro:
            def accumulate(self):  # type: ignore[no-untyped-def]
                total = 0
                while True:
                    try:
                        value = yield total
                    except ValueError:
                        value = 100
                    if value is None:
                        return total
                    total += value

        gen = trace_driver(Coro(), "acc").accumulate()
        self.assertEqual(next(gen), 0)
        self.assertEqual(gen.send(5), 5)
        self.assertEqual(gen.throw(ValueError("x")), 105)
        with self.assertRaises(StopIteration) as stop:
            gen.send(None)
        self.assertEqual(stop.exception.value, 105)
        self.assertEqual(self.span("acc.accumulate").status.status_code, StatusCode.UNSET)

    def test_consumer_context_not_polluted(self) -> None:
        from opentelemetry import trace as otel_trace

        driver = trace_driver(SampleDriver(), "g")
        early = driver.list_instances(1)  # parent: the context of the call
        with self.tracer.start_as_current_span("consumer") as consumer:
            gen = driver.list_instances(2)
            next(gen)
            self.assertIs(otel_trace.get_current_span(), consumer)
            list(gen)
            list(early)
        spans = [s for s in self.spans() if s.name == "g.list_instances"]
        self.assertChildOf(spans[0], self.span("consumer"))
        self.assertIsNone(spans[1].parent)


class TestRootSpans(base.TestCase):
    def test_calls_outside_a_trace_pass_through_when_root_spans_off(self) -> None:
        SWITCHES.set("driver_root_spans", False)
        d = trace_driver(SampleDriver(), "periodic")
        d.spawn("c", "vm")
        self.assertEqual(list(d.list_instances(1)), ["vm-0"])
        self.assertEqual(self.spans(), [])
        with self.tracer.start_as_current_span("request"):
            d.spawn("c", "vm")
        self.assertChildOf(self.span("periodic.spawn"), self.span("request"))


class TestUnsampledTrace(base.TestCase):
    use_live_sampler = True

    @staticmethod
    def raw_attach(volume_id: str) -> object:
        return asyncio.run(SampleDriver().attach_volume(volume_id))

    def test_calls_inside_an_unsampled_trace_follow_the_sampler(self) -> None:
        SWITCHES.set("sampling_rate", 0.0)
        seen = []

        class Probe(SampleDriver):
            def spawn(self, context: object, instance: str,  # type: ignore[override]
                      admin_password: str | None = None, **kw: object) -> object:
                seen.append(trace.get_current_span().get_span_context())
                return super().spawn(context, instance, admin_password, **kw)

        d = trace_driver(Probe(), "compute")
        with self.tracer.start_as_current_span("request") as request:
            self.assertFalse(request.get_span_context().trace_flags.sampled)
            d.spawn("c", "vm")
            self.assertEqual(list(d.list_instances(1)), ["vm-0"])

            self.assertEqual(asyncio.run(d.attach_volume("vol-1")),
                             self.raw_attach("vol-1"))
        # the parent-based sampler dropped the child: same trace, not sampled
        self.assertEqual(seen[0].trace_id, request.get_span_context().trace_id)
        self.assertFalse(seen[0].trace_flags.sampled)
        # no span was built for the dropped call: the request stays current
        self.assertEqual(seen[0].span_id, request.get_span_context().span_id)
        self.assertEqual(self.spans(), [])
        SWITCHES.set("sampling_rate", 1.0)
        with self.tracer.start_as_current_span("request2"):
            d.spawn("c", "vm")
        self.assertChildOf(self.span("compute.spawn"), self.span("request2"))

    def test_a_sampler_may_keep_driver_calls_of_an_unsampled_trace(self) -> None:
        """No shortcut around the sampler: one that keeps driver spans whatever
        the parent says gets them."""
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import (
            ALWAYS_OFF,
            Decision,
            Sampler,
            SamplingResult,
        )

        class DriversOnly(Sampler):
            def should_sample(self, parent_context: Any, trace_id: int, name: str,
                              *args: Any, **kwargs: Any) -> SamplingResult:
                keep = name.startswith("compute.")
                return SamplingResult(Decision.RECORD_AND_SAMPLE if keep
                                      else Decision.DROP)

            def get_description(self) -> str:
                return "DriversOnly"

        provider = TracerProvider(sampler=DriversOnly())
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        d = trace_driver(SampleDriver(), "compute", tracer=provider.get_tracer("t"))
        unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("host")
        with unsampled.start_as_current_span("request") as request:
            d.spawn("c", "vm")
        span = self.span("compute.spawn")
        self.assertEqual(span.context.trace_id, request.get_span_context().trace_id)
        self.assertEqual(span.parent.span_id, request.get_span_context().span_id)


class TestRequestContext(base.TestCase):
    def test_oslo_context_argument_gives_request_attributes(self) -> None:
        from oslo_context import context as oslo_context

        ctx = oslo_context.RequestContext(request_id="req-abc", project_id="p1",
                                          user_id="u1", overwrite=False,
                                          global_request_id="req-global")
        self.addCleanup(setattr, oslo_context._request_store, "context", None)
        d = trace_driver(SampleDriver(), "compute")
        d.spawn(ctx, "vm")
        d.spawn(context=ctx, instance="vm2")
        trace_driver(SampleDriver, "cls")().spawn(ctx, "vm3")
        d.spawn("not a context", "vm4")
        spans = self.spans()
        for span in spans[:3]:
            attrs = dict(span.attributes or {})
            self.assertEqual(attrs["openstack.request_id"], "req-abc")
            self.assertEqual(attrs["openstack.global_request_id"], "req-global")
            self.assertEqual(attrs["openstack.project_id"], "p1")
            self.assertEqual(attrs["openstack.user_id"], "u1")
        self.assertNotIn("openstack.request_id", dict(spans[3].attributes or {}))

    def test_wrapping_does_not_keep_driver_classes_alive(self) -> None:
        import gc
        import weakref

        def make() -> weakref.ref[type]:
            class Ephemeral:
                def run(self) -> int:
                    return 1
            proxy = trace_driver(Ephemeral(), "e")
            self.assertEqual(proxy.run(), 1)
            return weakref.ref(Ephemeral)

        ref = make()
        self.exporter.clear()  # finished spans hold no class, but keep it tidy
        gc.collect()
        self.assertIsNone(ref())


class TestRealDuration(base.TestCase):
    def test_generator_and_coroutine_spans_cover_the_work(self) -> None:
        import time as _time

        class Slow:
            def rows(self):  # type: ignore[no-untyped-def]
                for i in range(2):
                    _time.sleep(0.02)
                    yield i

            async def wait(self) -> None:
                await asyncio.sleep(0.03)

        d = trace_driver(Slow(), "slow")
        self.assertEqual(list(d.rows()), [0, 1])
        asyncio.run(d.wait())
        for name, at_least in (("slow.rows", 0.04), ("slow.wait", 0.03)):
            span = self.span(name)
            assert span.end_time is not None and span.start_time is not None
            self.assertGreaterEqual((span.end_time - span.start_time) / 1e9, at_least * 0.9)
