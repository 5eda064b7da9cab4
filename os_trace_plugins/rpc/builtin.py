"""Coexistence with oslo.messaging's built-in ``[oslo_messaging_tracing]``.

oslo.messaging 18.3 wraps ``RPCClient.call``/``cast`` in
``_tracing.trace_send`` and the server's dispatch in ``_tracing.trace_receive``
(a PRODUCER and a CONSUMER span, W3C keys in the context dict).  With both it
and our hook on, every message would get two pairs of spans.

Decision: while the RPC hook is instrumented and ``trace_rpc`` is on, ours
supersedes it: the two module functions are replaced by ones that return a
no-op context manager (so the built-in neither makes spans nor writes the
carrier; ours writes the same keys).  With ``trace_rpc`` off, or the hook
uninstrumented, the originals run exactly as configured.  Reasons: ours covers
notifications, OSProfiler carriers, expected exceptions and the real broker in
``messaging.system``; the built-in hard-codes ``rabbitmq``, uses deprecated
attribute names, and reads its option from a ConfigOpts that may not have it.

Both sides read the same W3C keys, so a peer process running only the
built-in tracing stays on the same trace in both directions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from os_trace_plugins._switches import SWITCHES

if TYPE_CHECKING:
    from os_trace_plugins.rpc._patch import Patch

__all__ = ["make_superseded"]

_NOOP = contextlib.nullcontext()


def make_superseded() -> Callable[[Callable[..., Any], Patch], Callable[..., Any]]:
    """A wrapper for ``_tracing.trace_send``/``trace_receive``: no-op while ours is on."""

    def factory(original: Callable[..., Any], patch: Patch) -> Callable[..., Any]:
        def superseded(*args: Any, **kwargs: Any) -> Any:
            if SWITCHES.trace_rpc and patch.active:
                return _NOOP
            return original(*args, **kwargs)

        return superseded

    return factory
