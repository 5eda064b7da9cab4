"""TracerProvider, sampler, propagators and exporters chosen by connection_string."""

from os_trace_plugins.export.exporters import (
    ConfigError,
    build_exporter,
    check_connection_string,
    default_store_path,
)
from os_trace_plugins.export.propagation import PROPAGATOR
from os_trace_plugins.export.sampler import LiveRatioSampler, build_sampler

__all__ = [
    "ConfigError",
    "LiveRatioSampler",
    "PROPAGATOR",
    "build_exporter",
    "build_sampler",
    "check_connection_string",
    "default_store_path",
]
