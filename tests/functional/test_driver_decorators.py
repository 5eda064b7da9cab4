"""trace / trace_cls decorators, and the OSProfiler behaviour they improve on."""

from __future__ import annotations

import asyncio
import inspect

from osprofiler import profiler as osp_profiler

from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.drivers import trace, trace_cls
from tests import base
from tests.secret_values import DRIVER_PASSWORD, DRIVER_TOKEN


@trace("db")
def instance_get(context: str, instance_id: int, password: str = "") -> dict[str, int]:
    return {"id": instance_id}


@trace("db", hide_args=False, hide_result=False, info={"db.system.name": "mysql"})
def instance_update(context: str, values: dict[str, str]) -> dict[str, str]:
    values["updated"] = "yes"
    return values


@trace("db")
async def instance_get_async(instance_id: int) -> int:
    await asyncio.sleep(0)
    return instance_id


@trace_cls("conductor")
class Manager:
    def __init__(self) -> None:
        self.n = 0

    def build(self, context: str, token: str = "") -> int:
        self.n += 1
        return self.n

    def _helper(self) -> str:
        return "h"

    @staticmethod
    def util() -> str:
        return "u"

    @classmethod
    def make(cls) -> Manager:
        return cls()

    @property
    def count(self) -> int:
        return self.n


class Base:
    def __init__(self) -> None:
        self.started = True

    def inherited(self) -> str:
        return "base"


@trace_cls("svc", trace_private=True, trace_static_methods=True,
           trace_class_methods=True)
class Service(Base):
    def __init__(self) -> None:
        super(Service, self).__init__()  # noqa: UP008 - the py2 style services still use

    def _private(self) -> str:
        return "p"

    @staticmethod
    def util(x: int) -> int:
        return x + 1

    @classmethod
    def make(cls) -> Service:
        return cls()


class TestTrace(base.TestCase):
    def test_function_span_hides_arguments(self) -> None:
        self.assertEqual(instance_get("ctx", 7, password=DRIVER_PASSWORD), {"id": 7})
        span = self.span("db.instance_get")
        attrs = dict(span.attributes or {})
        self.assertEqual(attrs["code.function.name"], f"{__name__}.instance_get")
        self.assertFalse([k for k in attrs if k.startswith("openstack.arg")])
        self.assertEqual(instance_get.__name__, "instance_get")
        self.assertIn("instance_id", str(inspect.signature(instance_get)))

    def test_switch_reveals_with_masking(self) -> None:
        SWITCHES.set("trace_driver_arguments", True)
        instance_get("ctx", 7, password=DRIVER_PASSWORD)
        attrs = dict(self.span("db.instance_get").attributes or {})
        self.assertEqual(attrs["openstack.arg.password"], "***")
        self.assertEqual(attrs["openstack.arg.instance_id"], "7")

    def test_explicit_reveal_info_and_mutation(self) -> None:
        values = {"host": "h", "auth_token": "abc"}
        out = instance_update("ctx", values)
        self.assertIs(out, values)
        self.assertEqual(values["updated"], "yes")
        attrs = dict(self.span("db.instance_update").attributes or {})
        self.assertEqual(attrs["db.system.name"], "mysql")
        self.assertIn("'host': 'h'", attrs["openstack.arg.values"])
        self.assertNotIn("abc", attrs["openstack.arg.values"])
        self.assertNotIn("abc", attrs["openstack.result"])

    def test_async_function(self) -> None:
        self.assertTrue(inspect.iscoroutinefunction(instance_get_async))
        self.assertEqual(asyncio.run(instance_get_async(3)), 3)
        self.span("db.instance_get_async")

    def test_switch_off(self) -> None:
        SWITCHES.set("trace_decorated", False)
        instance_get("ctx", 1)
        self.assertEqual(self.spans(), [])
        SWITCHES.set("trace_decorated", True)
        instance_get("ctx", 1)
        self.span("db.instance_get")

    def test_multiple_trace(self) -> None:
        self.assertIs(trace("again")(instance_get), instance_get)
        with self.assertRaises(ValueError):
            trace("again", allow_multiple_trace=False)(instance_get)

    def test_exceptions_propagate(self) -> None:
        @trace("x")
        def fail() -> None:
            raise LookupError("nope")
        with self.assertRaises(LookupError):
            fail()
        self.assertEqual(dict(self.span("x.fail").attributes or {})["error.type"],
                         "LookupError")


class TestTraceCls(base.TestCase):
    def test_public_methods_only_by_default(self) -> None:
        m = Manager.make()
        self.assertEqual(m.build("ctx", token=DRIVER_TOKEN), 1)
        self.assertEqual(m._helper(), "h")
        self.assertEqual(Manager.util(), "u")
        self.assertEqual(m.count, 1)
        self.assertEqual([s.name for s in self.spans()], ["conductor.build"])
        attrs = dict(self.span("conductor.build").attributes or {})
        self.assertEqual(attrs["code.function.name"], f"{__name__}.Manager.build")

    def test_patched_in_place_and_super_py2_style(self) -> None:
        s = Service.make()
        self.assertIs(type(s), Service)
        self.assertTrue(s.started)
        self.assertEqual(s._private(), "p")
        self.assertEqual(Service.util(1), 2)
        self.assertEqual(s.inherited(), "base")
        self.assertEqual(Base().inherited(), "base")  # the base class is untouched
        self.assertEqual(sorted(x.name for x in self.spans()),
                         ["svc._private", "svc.inherited", "svc.make", "svc.util"])

    def test_not_a_class(self) -> None:
        with self.assertRaises(TypeError):
            trace_cls("x")(instance_get)  # type: ignore[type-var]


class TestOSProfilerComparison(base.TestCase):
    """OSProfiler's trace() records ``password=`` kwargs by default; ours does not."""

    def test_osprofiler_records_password_by_default(self) -> None:
        recorded: list[dict[str, object]] = []

        @osp_profiler.trace("db")
        def login(user: str, password: str) -> bool:
            return True

        class Collector:
            def __init__(self) -> None:
                self.hmac_key = "k"

            def start(self, name: str, info: dict[str, object]) -> None:
                recorded.append(dict(info.get("function", {})))  # type: ignore[call-overload]

            def stop(self, info: dict[str, object] | None = None) -> None:
                pass

        orig = osp_profiler.get
        osp_profiler.get = lambda: Collector()  # type: ignore[assignment,return-value]
        try:
            login("admin", password="hunter2")
        finally:
            osp_profiler.get = orig
        self.assertIn("hunter2", str(recorded[0]["kwargs"]))

        @trace("db")
        def login2(user: str, password: str) -> bool:
            return True
        login2("admin", password="hunter2")
        for value in dict(self.span("db.login2").attributes or {}).values():
            self.assertNotIn("hunter2", str(value))


class TestEdgeCases(base.TestCase):
    def test_trace_above_staticmethod_and_classmethod(self) -> None:
        class Api:
            @trace("api")
            @staticmethod
            def ping(x: int) -> int:
                return x

            @trace("api")
            @classmethod
            def build(cls, y: int) -> int:
                return y

        self.assertEqual(Api.ping(1), 1)
        self.assertEqual(Api().ping(2), 2)
        self.assertEqual(Api.build(3), 3)
        self.assertEqual([s.name for s in self.spans()], ["api.ping", "api.ping", "api.build"])

    def test_request_context_in_decorated_db_api(self) -> None:
        from oslo_context import context as oslo_context

        ctx = oslo_context.RequestContext(request_id="req-db", overwrite=False)
        self.addCleanup(setattr, oslo_context._request_store, "context", None)
        instance_get(ctx, 1)  # type: ignore[arg-type]
        Manager().build(ctx)  # type: ignore[arg-type]
        for name in ("db.instance_get", "conductor.build"):
            self.assertEqual(dict(self.span(name).attributes or {})[
                "openstack.request_id"], "req-db")

    def test_request_context_through_functools_wraps_layers(self) -> None:
        import functools

        from oslo_context import context as oslo_context

        def require_context(f):  # type: ignore[no-untyped-def]
            @functools.wraps(f)
            def inner(*args, **kwargs):  # type: ignore[no-untyped-def]
                return f(*args, **kwargs)
            return inner

        @trace("db")
        @require_context
        def volume_get(context: object, volume_id: str) -> str:
            return volume_id

        ctx = oslo_context.RequestContext(request_id="req-wrapped", overwrite=False)
        self.addCleanup(setattr, oslo_context._request_store, "context", None)
        self.assertEqual(volume_get(ctx, "v1"), "v1")
        self.assertEqual(dict(self.span("db.volume_get").attributes or {})[
            "openstack.request_id"], "req-wrapped")
