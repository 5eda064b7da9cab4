"""Coexistence with oslo.messaging's built-in ``[oslo_messaging_tracing]``.

oslo.messaging 18.3 wraps ``RPCClient.call``/``cast`` in
``_tracing.trace_send`` and the server's dispatch in ``_tracing.trace_receive``
(a PRODUCER and a CONSUMER span, W3C keys in the context dict).  With both it
and our hook on, every message would get two pairs of spans.

Decision: while the RPC hook is instrumented and ``trace_rpc`` is on, ours
supersedes it: the two functions of the ``oslo_messaging._tracing`` package
(``rpc/_client.py`` and ``rpc/_server.py`` call them as ``tracing.trace_send``
/ ``tracing.trace_receive``) are wrapped, through the same post-import
:class:`~os_trace_plugins._patching.Patch` as every other hook, by
:func:`superseded`, which returns a no-op context manager (so the built-in
neither makes spans nor writes the carrier; ours writes the same keys).  With
``trace_rpc`` off, or the hook uninstrumented, the originals run exactly as
configured.  Reasons: ours covers notifications, OSProfiler carriers, expected
exceptions and the real broker in ``messaging.system``; the built-in
hard-codes ``rabbitmq``, uses deprecated attribute names, and reads its option
from a ConfigOpts that may not have it.

``_tracing`` is a private package of oslo.messaging: no public switch turns
the built-in off per call.  ``tests/functional/test_rpc_mixed.py`` fails
loudly when it moves (see docs/rpc.md, private API uses).

Both sides read the same W3C keys, so a peer process running only the
built-in tracing stays on the same trace in both directions.
"""

from __future__ import annotations

import contextlib
from typing import Any

from os_trace_plugins._switches import SWITCHES

__all__ = ["MODULE", "FUNCTIONS", "superseded"]

#: where oslo.messaging 18.x keeps its built-in tracing, and what is wrapped
MODULE = "oslo_messaging._tracing"
FUNCTIONS = ("trace_send", "trace_receive")

_NOOP = contextlib.nullcontext()


def superseded(wrapped: Any, instance: Any, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> Any:
    """``trace_send``/``trace_receive`` wrapper: a no-op while ours is on."""
    if SWITCHES.trace_rpc:
        return _NOOP
    return wrapped(*args, **kwargs)
