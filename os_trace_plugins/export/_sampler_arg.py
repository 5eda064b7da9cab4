"""``OTEL_TRACES_SAMPLER_ARG`` for the Jaeger remote sampler entry points.

Read as the Java SDK's ``jaeger_remote`` sampler reads it, so one
environment serves a mixed fleet:
``endpoint=URL,pollingIntervalMs=N,initialSamplingRate=R``.  Here
``endpoint`` is the HTTP sampling URL (the Java SDK's is the collector's
gRPC port 14250): docs/sampling.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from os_trace_plugins.export._jaeger_remote import (
    DEFAULT_ENDPOINT,
    DEFAULT_INITIAL_RATE,
    DEFAULT_INTERVAL,
    check_endpoint,
)

__all__ = ["SamplerArgs", "parse_sampler_arg"]

LOG = logging.getLogger("os_trace_plugins")


@dataclass(frozen=True)
class SamplerArgs:
    endpoint: str = DEFAULT_ENDPOINT
    interval: float = DEFAULT_INTERVAL
    initial_rate: float = DEFAULT_INITIAL_RATE


def parse_sampler_arg(arg: str | None) -> SamplerArgs:
    """``OTEL_TRACES_SAMPLER_ARG`` as the Java SDK reads it:
    ``endpoint=URL,pollingIntervalMs=N,initialSamplingRate=R``.

    A bad value or an unknown key is logged in one line and its default
    used: a service must start even with a typo here.
    """
    values: dict[str, str] = {}
    for item in (arg or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            LOG.warning("os_trace_plugins: OTEL_TRACES_SAMPLER_ARG: %r is not key=value; "
                        "ignored", item)
            continue
        values[key.strip()] = value.strip()
    endpoint, interval, rate = DEFAULT_ENDPOINT, DEFAULT_INTERVAL, DEFAULT_INITIAL_RATE
    for key, value in values.items():
        try:
            if key == "endpoint":
                endpoint = check_endpoint(value)
            elif key == "pollingIntervalMs":
                interval = float(value) / 1000.0
                if not interval > 0:
                    raise ValueError("must be > 0")
            elif key == "initialSamplingRate":
                rate = float(value)
                if not 0.0 <= rate <= 1.0:
                    raise ValueError("must be within [0, 1]")
            else:
                LOG.warning("os_trace_plugins: OTEL_TRACES_SAMPLER_ARG: unknown key %r "
                            "ignored (known: endpoint, pollingIntervalMs, "
                            "initialSamplingRate)", key)
        except ValueError as exc:
            LOG.warning("os_trace_plugins: OTEL_TRACES_SAMPLER_ARG: %s=%s is not usable "
                        "(%s); using the default", key, value, exc)
            endpoint = endpoint if key != "endpoint" else DEFAULT_ENDPOINT
            interval = interval if key != "pollingIntervalMs" else DEFAULT_INTERVAL
            rate = rate if key != "initialSamplingRate" else DEFAULT_INITIAL_RATE
    return SamplerArgs(endpoint, interval, rate)
