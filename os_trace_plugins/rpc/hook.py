"""The ``rpc`` hook: oslo.messaging RPC calls, casts and fanout, both sides.

Loaded by ``os_trace_plugins.setup()`` through the ``os_trace_plugins.hooks``
entry point (``rpc``), or by ``opentelemetry-instrument`` through
``os_trace_plugins_rpc`` (:class:`RPCInstrumentor`), or by hand::

    from os_trace_plugins._hooks import shared
    from os_trace_plugins.rpc.hook import RPCHook
    shared(RPCHook).instrument(conf, tracer_provider)
    ...
    shared(RPCHook).uninstrument()

Instrumenting imports nothing of oslo.messaging: every wrapper is a
:class:`~os_trace_plugins._patching.Patch` applied when the service imports
the module that defines the target (``Transport._send``,
``RPCDispatcher.dispatch``, ``RPCServer.__init__`` for the server's topic, and
the built-in ``_tracing`` functions, see :mod:`os_trace_plugins.rpc.builtin`).
Instrument and uninstrument are symmetric and idempotent; a wrapper someone
put on top of ours keeps working after ours is removed (ours goes inert).
``[profiler] trace_rpc`` is read on every message (``SWITCHES.trace_rpc``),
so SIGHUP flips it live.
"""

from __future__ import annotations

from typing import ClassVar

from os_trace_plugins._hooks import Hook, HookInstrumentor
from os_trace_plugins.rpc import builtin, client, server

__all__ = ["RPCHook", "RPCInstrumentor"]


class RPCHook(Hook):
    """Caller and server side of oslo.messaging RPC."""

    name: ClassVar[str] = "rpc"
    option: ClassVar[str | None] = "trace_rpc"

    def _instrument(self) -> None:
        self.patch("oslo_messaging.transport", "Transport._send", client.make_send(self))
        self.patch("oslo_messaging.rpc.dispatcher", "RPCDispatcher.dispatch",
                   server.make_dispatch(self))
        self.patch("oslo_messaging.rpc.server", "RPCServer.__init__",
                   server.remember_target)
        for fn in builtin.FUNCTIONS:
            self.patch(builtin.MODULE, fn, builtin.superseded)


class RPCInstrumentor(HookInstrumentor):
    """``opentelemetry-instrument`` entry point for the RPC hook."""

    hook_class = RPCHook
    dependencies = ("oslo.messaging >= 14.0",)
