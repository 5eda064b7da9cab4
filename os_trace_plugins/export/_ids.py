"""An ``IdGenerator`` that can hand out a trace id the caller asked for.

Why: a request signed with the ``root`` flag (``os-trace sign`` without a
span of its own, or OSProfiler headers whose ``parent_id`` is the
``base_id``) names the trace id the operator will look up, but no parent
span: the API's SERVER span must be the *root* of that trace.  The SDK
offers one supported way to choose a root's trace id: the provider's
``IdGenerator``.  ``setup()`` installs :class:`RequestableIdGenerator` on the
provider it creates; the WSGI middleware calls :func:`requested` around its
``start_span`` with no parent, and the SDK asks the generator for the trace
id inside that call.  Every other id comes from the SDK's
``RandomIdGenerator``.

With a provider the host installed (not ours) the generator is not there:
:func:`honoured` says so and the middleware starts a fresh root with a span
link to the signed parent instead (docs/wsgi.md).

The requested id is consumed by the first root started under it, so a span
processor starting a span of its own inside ``start_span`` gets a fresh id.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

__all__ = ["RequestableIdGenerator", "requested", "honoured"]

#: the trace id the next root started in this context must get (0: none)
_REQUESTED: ContextVar[int] = ContextVar("os_trace_plugins.requested_trace_id",
                                         default=0)


class RequestableIdGenerator(IdGenerator):
    """Random ids, except a root trace id asked for with :func:`requested`."""

    def __init__(self, fallback: IdGenerator | None = None) -> None:
        self._fallback = fallback or RandomIdGenerator()

    def generate_span_id(self) -> int:
        return self._fallback.generate_span_id()

    def generate_trace_id(self) -> int:
        wanted = _REQUESTED.get()
        if wanted:
            _REQUESTED.set(0)  # consumed; requested() restores the outer value
            return wanted
        return self._fallback.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        # Requested ids come from a signer's secrets.randbits(128) or an
        # OSProfiler uuid4: their low 56 bits are random too.
        return self._fallback.is_trace_id_random()


@contextmanager
def requested(trace_id: int) -> Iterator[None]:
    """Within the block, the next root span started gets ``trace_id``."""
    token = _REQUESTED.set(trace_id)
    try:
        yield
    finally:
        _REQUESTED.reset(token)


def honoured(provider: Any) -> bool:
    """Whether ``provider`` (an SDK ``TracerProvider``) gives out requested ids."""
    return isinstance(getattr(provider, "id_generator", None), RequestableIdGenerator)
