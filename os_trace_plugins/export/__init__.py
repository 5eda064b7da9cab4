"""TracerProvider parts chosen by ``[profiler]``: sampler, id generator, exporters.

Public here are the OpenTelemetry SDK plug-ins that any service may use, ours
or not (also reachable as the ``opentelemetry_traces_sampler`` and
``opentelemetry_id_generator`` entry points named ``os_trace_plugins``):

- :class:`ProfilerSampler` -- parent-based ratio sampler that keeps signed roots;
- :func:`from_env` -- the sampler ``OTEL_TRACES_SAMPLER=os_trace_plugins`` builds;
- :class:`RequestableIdGenerator` -- lets a signed root request keep its trace id;
- :class:`JaegerRemoteSampler` -- Jaeger remote-controlled sampling, and the
  factories of its entry points :func:`jaeger_remote_from_env` and
  :func:`parentbased_jaeger_remote_from_env` (docs/sampling.md).

The exporters, propagators and connection-string parsing are internal
(``_exporters``, ``_propagation``): ``setup()`` is their interface.
"""

from os_trace_plugins.export._ids import RequestableIdGenerator
from os_trace_plugins.export._jaeger_remote import JaegerRemoteSampler
from os_trace_plugins.export._sampler import (
    ProfilerSampler,
    from_env,
    jaeger_remote_from_env,
    parentbased_jaeger_remote_from_env,
)

__all__ = [
    "JaegerRemoteSampler",
    "ProfilerSampler",
    "RequestableIdGenerator",
    "from_env",
    "jaeger_remote_from_env",
    "parentbased_jaeger_remote_from_env",
]
