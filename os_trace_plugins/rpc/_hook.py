"""The ``rpc`` hook: oslo.messaging RPC calls, casts and fanout, both sides.

Loaded by ``os_trace_plugins.setup()`` through the ``os_trace_plugins.hooks``
entry point (``rpc``), or by ``opentelemetry-instrument`` through
``os_trace_plugins_rpc`` (:class:`RPCInstrumentor`), or by hand::

    from os_trace_plugins._hooks import shared
    from os_trace_plugins.rpc._hook import RPCHook
    shared(RPCHook).instrument(conf, tracer_provider)
    ...
    shared(RPCHook).uninstrument()

Instrumenting imports nothing of oslo.messaging: every wrapper is a
:class:`~os_trace_plugins._patching.Patch` applied when the service imports
the module that defines the target (``Transport._send``,
``RPCDispatcher.dispatch``, ``RPCServer.__init__`` for the server's topic, and
the built-in ``_tracing`` functions, see :mod:`os_trace_plugins.rpc._builtin`).
Instrument and uninstrument are symmetric and idempotent; a wrapper someone
put on top of ours keeps working after ours is removed (ours goes inert).
``[profiler] trace_rpc`` is followed live (SIGHUP): the caller-side
``Transport._send`` wrapper is applied only while it is on, so with it off a
send runs oslo.messaging's own, unwrapped method (a wrapt wrapper costs
~6,000 CPU instructions per call for its binding alone, most of the 1 µs
budget); the server-side wrapper stays, because it strips trace keys other
emitters wrote even while ``trace_rpc`` is off, and reads the switch per
message.
"""

from __future__ import annotations

from typing import Any, ClassVar

from os_trace_plugins._hooks import Hook, HookInstrumentor
from os_trace_plugins._patching import Patch
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.rpc import _builtin as builtin
from os_trace_plugins.rpc import _client as client
from os_trace_plugins.rpc import _server as server

__all__ = ["RPCHook", "RPCInstrumentor"]


class RPCHook(Hook):
    """Caller and server side of oslo.messaging RPC."""

    name: ClassVar[str] = "rpc"
    option: ClassVar[str | None] = "trace_rpc"
    #: (module, "Class.method") of the caller and server sides; the bench
    #: points a subclass at its own do-nothing classes
    send_target: ClassVar[tuple[str, str]] = ("oslo_messaging.transport", "Transport._send")
    dispatch_target: ClassVar[tuple[str, str]] = ("oslo_messaging.rpc.dispatcher",
                                                  "RPCDispatcher.dispatch")

    def __init__(self) -> None:
        super().__init__()
        self._send: Patch | None = None

    def _instrument(self) -> None:
        self._send = self.patch(*self.send_target, client.make_send(self))
        self.patch(*self.dispatch_target, server.make_dispatch(self))
        self._patch_more()
        SWITCHES.subscribe("trace_rpc", self._follow)
        self._follow(None, SWITCHES.trace_rpc)

    def _patch_more(self) -> None:
        """The server's topic and the built-in tracing functions."""
        self.patch("oslo_messaging.rpc.server", "RPCServer.__init__",
                   server.remember_target)
        for fn in builtin.FUNCTIONS:
            self.patch(builtin.MODULE, fn, builtin.superseded)

    def _follow(self, old: Any, on: Any) -> None:
        """Apply the caller-side wrapper while ``trace_rpc`` is on, only."""
        with self._lock:
            send = self._send
            if send is None:
                return
            if on:
                send.apply()
            else:
                send.remove()

    def _uninstrument(self) -> None:
        SWITCHES.unsubscribe("trace_rpc", self._follow)
        with self._lock:
            self._send = None  # removed with the other patches


class RPCInstrumentor(HookInstrumentor):
    """``opentelemetry-instrument`` entry point for the RPC hook."""

    hook_class = RPCHook
    dependencies = ("oslo.messaging >= 14.0",)
