"""How the sampler recognises a root the API edge verified: one start attribute.

The WSGI middleware starts the SERVER span of a signed request with
``os_trace.trust`` = ``signed`` or ``osprofiler`` (set only from a verified
signature, docs/wsgi.md).  Every root sampler of ours (the live ratio, the
Jaeger remote one) keeps such a root whatever its rate says; this module is
the one place both read the name from, so there is one way of doing it.
"""

from __future__ import annotations

__all__ = ["TRUST_ATTRIBUTE", "ALWAYS_KEPT"]

#: the start attribute naming how the edge trusted a request
TRUST_ATTRIBUTE = "os_trace.trust"
#: trust values whose roots are always recorded (verified signatures)
ALWAYS_KEPT = frozenset({"signed", "osprofiler"})
