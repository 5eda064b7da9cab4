"""``OTEL_TRACES_SAMPLER=os_trace_plugins``: our live sampler for the SDK configurator.

Under ``opentelemetry-instrument`` with opentelemetry-distro installed, the
SDK configurator builds the TracerProvider from ``OTEL_*`` before any code of
ours runs, and a provider's sampler is fixed at construction.  This factory is
the ``opentelemetry_traces_sampler`` entry point that makes that provider's
sampler ours: parent-based, new roots sampled at ``[profiler] sampling_rate``
read live (so SIGHUP changes it) once the service's section is parsed; 1.0
until then.  ``OTEL_TRACES_SAMPLER_ARG`` is ignored: ``[profiler]`` decides.
"""

from __future__ import annotations

from opentelemetry.sdk.trace.sampling import Sampler

from os_trace_plugins.export.sampler import build_sampler

__all__ = ["sampler_factory"]


def sampler_factory(_arg: object = None) -> Sampler:
    """The sampler the SDK configurator asks for by entry-point name."""
    return build_sampler()
