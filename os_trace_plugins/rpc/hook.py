"""The ``rpc`` hook: oslo.messaging RPC calls, casts and fanout, both sides.

Loaded by ``os_trace_plugins.setup()`` through the ``os_trace_plugins.hooks``
entry point (``rpc``), or by ``opentelemetry-instrument`` through
``os_trace_plugins_rpc`` (:class:`RPCInstrumentor`), or by hand::

    from os_trace_plugins.rpc.hook import RPCHook
    hook = RPCHook(); hook.instrument(conf, tracer_provider)
    ...
    hook.uninstrument()

It patches three class/module attributes (``Transport._send``,
``RPCDispatcher.dispatch``, and oslo.messaging's built-in ``_tracing``
functions, see :mod:`os_trace_plugins.rpc.builtin`); instrument and
uninstrument are symmetric and idempotent.  ``[profiler] trace_rpc`` is read
on every message (``SWITCHES.trace_rpc``), so SIGHUP flips it live.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

from os_trace_plugins._hooks import Hook, HookInstrumentor
from os_trace_plugins.rpc import builtin, client, server
from os_trace_plugins.rpc._patch import Patch

__all__ = ["RPCHook", "RPCInstrumentor"]


def apply_all(patches: list[Patch]) -> None:
    """Apply every patch, or none: a failure undoes the ones applied."""
    done: list[Patch] = []
    try:
        for patch in patches:
            patch.apply()
            done.append(patch)
    except BaseException:
        for patch in reversed(done):
            patch.remove()
        raise


class RPCHook(Hook):
    """Caller and server side of oslo.messaging RPC."""

    name: ClassVar[str] = "rpc"
    option: ClassVar[str | None] = "trace_rpc"
    requires: ClassVar[tuple[str, ...]] = ("oslo_messaging",)

    def __init__(self) -> None:
        super().__init__()
        self._patches: list[Patch] = []

    def _instrument(self) -> None:
        from oslo_messaging import transport
        from oslo_messaging.rpc import dispatcher

        patches = [
            Patch(transport.Transport, "_send", client.make_send(self)),
            Patch(dispatcher.RPCDispatcher, "dispatch",
                  server.make_dispatch(self, dispatcher.ExpectedException)),
        ]
        tracing: Any = _builtin_tracing()
        if tracing is not None:
            for fn in ("trace_send", "trace_receive"):
                if hasattr(tracing, fn):
                    patches.append(Patch(tracing, fn, builtin.make_superseded()))
        apply_all(patches)
        self._patches = patches

    def _uninstrument(self) -> None:
        patches, self._patches = self._patches, []
        for patch in reversed(patches):
            patch.remove()


def _builtin_tracing() -> Any:
    """oslo.messaging's ``_tracing`` package (18.x and later), if present."""
    try:
        return importlib.import_module("oslo_messaging._tracing")
    except ImportError:
        return None


class RPCInstrumentor(HookInstrumentor):
    """``opentelemetry-instrument`` entry point for the RPC hook."""

    hook_class = RPCHook
    dependencies = ("oslo.messaging >= 14.0",)
