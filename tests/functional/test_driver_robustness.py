"""trace_driver() robustness: bad input, broken telemetry, concurrency."""

from __future__ import annotations

from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.drivers import trace_driver
from tests import base
from tests.functional._driver_sample import DriverError, SampleDriver, Widget


class TestBadInput(base.TestCase):
    def test_not_a_driver(self) -> None:
        for bad in (None, 3, "nova.virt.Driver", b"x", [1], {"a": 1}, (1,)):
            with self.subTest(bad=bad), self.assertRaises(TypeError) as caught:
                trace_driver(bad)
            self.assertIn("trace_driver() wraps a driver class, instance or module",
                          str(caught.exception))

    def test_function_points_to_trace(self) -> None:
        def helper() -> None:
            pass
        for fn in (helper, len, SampleDriver().spawn):
            with self.subTest(fn=fn), self.assertRaises(TypeError) as caught:
                trace_driver(fn)
            self.assertIn("os_trace_plugins.drivers.trace", str(caught.exception))

    def test_getattr_that_raises_is_unchanged(self) -> None:
        w = trace_driver(Widget(), "w")
        self.assertEqual(w.ping(), "pong")
        with self.assertRaises(RuntimeError) as caught:
            w.missing  # noqa: B018
        self.assertEqual(str(caught.exception), "no attribute missing on a widget")
        self.span("w.ping")

    def test_method_mutating_its_arguments(self) -> None:
        SWITCHES.set("trace_driver_arguments", True)
        items: list[str] = []
        trace_driver(SampleDriver(), "m").append_to(items)
        self.assertEqual(items, ["driver was here"])

    def test_wrong_call_arguments_raise_the_hosts_typeerror(self) -> None:
        SWITCHES.set("trace_driver_arguments", True)
        d = trace_driver(SampleDriver(), "t")
        with self.assertRaises(TypeError) as caught:
            d.spawn()  # type: ignore[call-arg]
        self.assertIn("spawn()", str(caught.exception))

    def test_broken_repr_in_arguments(self) -> None:
        class Ugly:
            def __repr__(self) -> str:
                raise ValueError("no repr")

        SWITCHES.set("trace_driver_arguments", True)
        trace_driver(SampleDriver(), "u").spawn(Ugly(), "vm")
        self.assertIn("repr failed", dict(self.span("u.spawn").attributes or {})[
            "openstack.arg.context"])


class TestUnsubclassable(base.TestCase):
    def test_class_that_refuses_subclassing(self) -> None:
        class Sealed:
            def __init_subclass__(cls, **kwargs: object) -> None:
                raise RuntimeError("sealed")

            def run(self) -> int:
                return 1

        with self.assertRaises(TypeError) as caught:
            trace_driver(Sealed, "s")
        self.assertIn("wrap an instance", str(caught.exception))
        self.assertEqual(trace_driver(Sealed(), "s").run(), 1)
        with self.assertRaises(TypeError):
            trace_driver(bool)


class TestNeverBreaksTheHost(base.TestCase):
    def test_a_failing_tracer_is_logged_and_the_call_goes_through(self) -> None:
        class BrokenTracer:
            def start_span(self, *args: object, **kwargs: object) -> None:
                raise RuntimeError("tracer bug")

        d = trace_driver(SampleDriver(), "b", tracer=BrokenTracer())  # type: ignore[arg-type]
        with self.assertLogs("os_trace_plugins", level="ERROR") as logs:
            self.assertEqual(d.spawn("c", "vm")["instance"], "vm")
            self.assertEqual(list(d.list_instances(2)), ["vm-0", "vm-1"])
            with self.assertRaises(DriverError):
                d.reboot("vm")
        self.assertIn("tracer bug", "\n".join(logs.output))

    def test_a_failing_span_processor_does_not_hide_the_result(self) -> None:
        from opentelemetry.sdk.trace import SpanProcessor

        class Exploding(SpanProcessor):
            def on_end(self, span: object) -> None:  # type: ignore[override]
                raise RuntimeError("processor bug")

        self.provider.add_span_processor(Exploding())
        d = trace_driver(SampleDriver(), "p")
        with self.assertLogs("os_trace_plugins", level="ERROR"):
            self.assertEqual(d.spawn("c", "vm")["instance"], "vm")


class TestConcurrency(base.TestCase):
    def test_concurrent_calls_keep_their_own_parents(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        d = trace_driver(SampleDriver(), "compute")

        def request(i: int) -> None:
            with self.tracer.start_as_current_span(f"request-{i}"):
                for _ in range(5):
                    d.spawn("c", f"vm-{i}")

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(request, range(8)))
        spans = self.spans()
        parents = {s.context.span_id: s for s in spans if s.name.startswith("request-")}
        children = [s for s in spans if s.name == "compute.spawn"]
        self.assertEqual(len(children), 40)
        for child in children:
            assert child.parent is not None
            self.assertIn(child.parent.span_id, parents)
        per_parent = {p: 0 for p in parents}
        for child in children:
            assert child.parent is not None
            per_parent[child.parent.span_id] += 1
        self.assertEqual(set(per_parent.values()), {5})
