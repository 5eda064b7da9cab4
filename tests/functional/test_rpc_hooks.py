"""Instrument/uninstrument symmetry, live switches, entry-point loading."""

from __future__ import annotations

from typing import Any

import oslo_messaging as om
from oslo_messaging.notify import dispatcher as notify_dispatcher
from oslo_messaging.rpc import dispatcher as rpc_dispatcher
from oslo_messaging.rpc import server as rpc_server
from oslo_messaging.transport import Transport

from os_trace_plugins import _hooks, _switches
from os_trace_plugins.rpc._hook import RPCHook
from os_trace_plugins.rpc._notify_hook import NotificationHook
from tests.base import write_config
from tests.functional.rpc_env import HAS_BUILTIN_TRACING, Recorder, RPCTestCase

ORIGINALS = {
    (Transport, "_send"): Transport.__dict__["_send"],
    (Transport, "_send_notification"): Transport.__dict__["_send_notification"],
    (rpc_dispatcher.RPCDispatcher, "dispatch"): rpc_dispatcher.RPCDispatcher.__dict__["dispatch"],
    (notify_dispatcher.NotificationDispatcher, "dispatch"):
        notify_dispatcher.NotificationDispatcher.__dict__["dispatch"],
    (notify_dispatcher.BatchNotificationDispatcher, "dispatch"):
        notify_dispatcher.BatchNotificationDispatcher.__dict__["dispatch"],
    (rpc_server.RPCServer, "__init__"): rpc_server.RPCServer.__dict__["__init__"],
}
if HAS_BUILTIN_TRACING:
    from oslo_messaging import _tracing

    ORIGINALS[(_tracing, "trace_send")] = _tracing.__dict__["trace_send"]
    ORIGINALS[(_tracing, "trace_receive")] = _tracing.__dict__["trace_receive"]


class SymmetryTest(RPCTestCase):

    def assertPristine(self) -> None:
        for (owner, name), fn in ORIGINALS.items():
            self.assertIs(owner.__dict__[name], fn, f"{owner.__name__}.{name} not restored")

    def test_uninstrument_restores_everything_and_is_idempotent(self) -> None:
        for _ in range(2):
            self.rpc_hook.instrument(self.conf, self.provider)  # second call: no-op
            self.notify_hook.instrument(self.conf, self.provider)
            self.assertIsNot(Transport.__dict__["_send"], ORIGINALS[(Transport, "_send")])
            self.assertIs(Transport.__dict__["_send"].__wrapped__, ORIGINALS[(Transport, "_send")])
            self.rpc_hook.uninstrument()
            self.rpc_hook.uninstrument()
            self.notify_hook.uninstrument()
            self.notify_hook.uninstrument()
            self.assertPristine()

    def test_wrapped_over_by_someone_else_goes_inert(self) -> None:
        ours = Transport.__dict__["_send"]
        calls: list[int] = []

        def theirs(self: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            return ours(self, *args, **kwargs)

        Transport._send = theirs  # type: ignore[method-assign]
        self.addCleanup(setattr, Transport, "_send", ORIGINALS[(Transport, "_send")])
        self.rpc_hook.uninstrument()
        self.assertIs(Transport.__dict__["_send"], theirs, "someone else's wrapper dropped")
        self.start_server([Recorder()])
        with self.tracer.start_as_current_span("api"):
            self.assertEqual(self.client().call({}, "echo", value=3), 3)
        self.assertEqual(calls, [1])
        self.assertEqual([s.name for s in self.spans() if s.name != "api"], [])

    def test_load_hooks_finds_both(self) -> None:
        self.rpc_hook.uninstrument()
        self.notify_hook.uninstrument()
        loaded = _hooks.load_hooks(self.conf, self.provider)
        self.assertIsInstance(loaded["rpc"], RPCHook)
        self.assertIsInstance(loaded["notifications"], NotificationHook)
        _hooks.unload_hooks()
        self.assertIs(Transport.__dict__["_send"], ORIGINALS[(Transport, "_send")])


class LiveSwitchTest(RPCTestCase):

    def test_sighup_flips_trace_rpc(self) -> None:
        path = write_config(f"{self.tmpdir}/svc.conf", {"trace_rpc": True})
        conf = self.conf
        conf(args=[], default_config_files=[path])
        _switches.bind(conf)
        rec = Recorder()
        self.start_server([rec])
        client = self.client()
        client.call({}, "echo")
        self.assertEqual(len(self.spans()), 2)
        write_config(path, {"trace_rpc": False})
        conf.mutate_config_files()
        self.assertFalse(_switches.SWITCHES.trace_rpc)
        self.assertEqual(client.call({}, "echo", value=5), 5)
        self.assertEqual(len(self.spans()), 2, "spans made with trace_rpc off")
        write_config(path, {"trace_rpc": True})
        conf.mutate_config_files()
        client.call({}, "echo")
        self.assertEqual(len(self.spans()), 4)
        self.assertEqual(len(rec.seen), 3)

    def test_sighup_flips_trace_notifications(self) -> None:
        path = write_config(f"{self.tmpdir}/svc.conf", {"trace_notifications": False})
        self.conf(args=[], default_config_files=[path])
        _switches.bind(self.conf)
        notifier = om.Notifier(self.transport, publisher_id="p", driver="messaging",
                               topics=[self.topic])
        notifier.info({}, "a.b", {})
        self.assertEqual(self.spans(), [])
        write_config(path, {"trace_notifications": True})
        self.conf.mutate_config_files()
        notifier.info({}, "a.b", {})
        self.assertEqual([s.name for s in self.spans()], ["a.b publish"])

    def test_notifications_switch_independent(self) -> None:
        _switches.SWITCHES.set("trace_rpc", False)
        notifier = om.Notifier(self.transport, publisher_id="p", driver="messaging",
                               topics=[self.topic])
        notifier.info({}, "a.b", {})
        self.assertEqual([s.name for s in self.spans()], ["a.b publish"])
