"""Zero-code activation of unmodified OpenStack services (docs/zero-code.md).

``opentelemetry-instrument <service> --config-file ...`` with a ``[profiler]``
section is enough: :mod:`._activation` (the ``opentelemetry_instrumentor``
entry point) calls ``os_trace_plugins.setup()`` once the service has parsed
its configuration, :mod:`._osprofiler_side` keeps OSProfiler quiet while ours
trace, :mod:`._resource` gives each forked worker its own pid and instance id,
:mod:`.sampling` lets ``[profiler] sampling_rate`` decide a provider built
from ``OTEL_*``.  Nothing is imported here: ``setup()`` uses
:mod:`._resource` without loading the instrumentation package.
"""

__all__: list[str] = []
