"""The root samplers ``setup()`` installs, and the Jaeger remote sampler factories.

``[profiler] sampler`` picks how new roots are decided, live (both are
mutable: SIGHUP switches between them):

* ``ratio`` (the default): :class:`LiveRatioSampler`, ``sampling_rate``.
  The SDK's ``TraceIdRatioBased`` fixes its bound at construction;
  operators change the rate during an incident (SIGHUP), so the root sampler
  is rebuilt when the switch changes, and the per-span cost stays one
  attribute read.
* ``jaeger_remote``: Jaeger's remote-controlled sampling
  (:mod:`os_trace_plugins.export._jaeger_remote`, docs/sampling.md), polled
  from ``sampling_endpoint`` every ``sampling_refresh_interval`` seconds;
  ``sampling_rate`` is the fallback until the endpoint answers.

:class:`ProfilerSampler` is parent-based over :class:`LiveRootSampler`,
which swaps between the two when those switches change (a listener on the
switches; the request path reads one attribute).

A signed request is always recorded (docs/wsgi.md).  When it continues a
trace, its remote parent is sampled and the parent-based rule keeps it; when
it is signed as a *root* (no parent span), the WSGI middleware starts the
span with the start attribute ``os_trace.trust`` (``signed`` or
``osprofiler``, set only from a verified signature) and the root sampler
keeps it whatever the rate or the remote strategy says.  The sampler sees
start attributes through the public ``Sampler.should_sample`` signature, so
no decision is taken around the SDK.

For any OpenTelemetry Python service, ours or not, the SDK's configurator
finds the Jaeger remote sampler by entry point (group
``opentelemetry_traces_sampler``): ``OTEL_TRACES_SAMPLER=jaeger_remote`` or
``parentbased_jaeger_remote`` with ``OTEL_TRACES_SAMPLER_ARG`` read as the
Java SDK reads it (``endpoint=...,pollingIntervalMs=...,initialSamplingRate=...``).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.export._jaeger_remote import JaegerRemoteSampler
from os_trace_plugins.export._sampler_arg import parse_sampler_arg
from os_trace_plugins.export._trust import ALWAYS_KEPT, TRUST_ATTRIBUTE

__all__ = ["LiveRatioSampler", "LiveRootSampler", "ProfilerSampler", "build_sampler",
           "from_env", "jaeger_remote_from_env", "parentbased_jaeger_remote_from_env",
           "REMOTE"]

LOG = logging.getLogger("os_trace_plugins")

#: ``[profiler] sampler`` value selecting Jaeger remote sampling
REMOTE = "jaeger_remote"
#: the switches that (re)configure the root sampler
_REMOTE_SWITCHES = ("sampler", "sampling_endpoint", "sampling_refresh_interval")


class LiveRatioSampler(Sampler):
    """Trace-id ratio sampling with a rate read from the live switches;
    signed roots (:data:`TRUST_ATTRIBUTE` in :data:`ALWAYS_KEPT`) are kept."""

    def __init__(self) -> None:
        self._rate = -1.0
        self._delegate: Sampler = TraceIdRatioBased(1.0)
        self._refresh(SWITCHES.sampling_rate)

    def _refresh(self, rate: float) -> None:
        rate = min(1.0, max(0.0, float(rate)))
        if rate != self._rate:
            self._delegate = TraceIdRatioBased(rate)
            self._rate = rate

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: TraceState | None = None) -> SamplingResult:
        if attributes and attributes.get(TRUST_ATTRIBUTE) in ALWAYS_KEPT:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)
        rate = SWITCHES.sampling_rate
        if rate != self._rate:
            self._refresh(rate)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"LiveRatioSampler{{{self._rate}}}"


def _on_switch(ref: weakref.ref[LiveRootSampler]) -> Any:
    """A switch listener holding the root sampler weakly (a replaced sampler
    is collected; its listener then removes itself)."""

    def listener(old: Any, new: Any) -> None:
        sampler = ref()
        if sampler is None:
            for name in _REMOTE_SWITCHES:
                SWITCHES.unsubscribe(name, listener)
            return
        sampler.reconfigure()
    return listener


class LiveRootSampler(Sampler):
    """New roots by ``[profiler] sampler``: :class:`LiveRatioSampler` or a
    :class:`JaegerRemoteSampler` (falling back to the live ratio)."""

    def __init__(self, service: str | None = None) -> None:
        self._ratio = LiveRatioSampler()
        self._active: Sampler = self._ratio
        self._remote: JaegerRemoteSampler | None = None
        self._service = service or _resource_service()
        self._lock = threading.Lock()
        self._told: tuple[Any, ...] | None = None
        self._closed = False
        self._listener = _on_switch(weakref.ref(self))
        for name in _REMOTE_SWITCHES:
            SWITCHES.subscribe(name, self._listener)
        self.reconfigure()

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: TraceState | None = None) -> SamplingResult:
        return self._active.should_sample(parent_context, trace_id, name, kind,
                                          attributes, links, trace_state)

    @property
    def remote(self) -> JaegerRemoteSampler | None:
        """The Jaeger remote sampler deciding now (None: the ratio decides)."""
        return self._remote if self._active is self._remote else None

    @property
    def service(self) -> str:
        return self._service

    def set_service(self, service: str) -> None:
        """The ``service`` query of the poll (``setup()`` knows it once the
        configuration is read)."""
        if service and service != self._service:
            self._service = service
            self.reconfigure()

    def reconfigure(self) -> None:
        """Follow ``sampler``, ``sampling_endpoint``, ``sampling_refresh_interval``
        (switch listener; never on the request path)."""
        mode, endpoint = SWITCHES.sampler, SWITCHES.sampling_endpoint
        interval = float(SWITCHES.sampling_refresh_interval)
        with self._lock:
            old = self._remote
            if self._closed:
                return
            if mode != REMOTE or not endpoint:
                if mode == REMOTE:
                    self._tell(("no endpoint",), logging.ERROR,
                               "os_trace_plugins: [profiler] sampler = jaeger_remote needs "
                               "sampling_endpoint (for example "
                               "http://localhost:5778/sampling); %s samples at "
                               "sampling_rate", self._service)
                self._active, self._remote = self._ratio, None
            elif old is not None and old.key == (endpoint, self._service):
                old.interval = interval  # the poller's next wait uses it
                return
            else:
                try:
                    new = JaegerRemoteSampler(endpoint, self._service, self._ratio,
                                              interval, initial=old.spec if old else None)
                except ValueError as exc:
                    self._tell(("bad endpoint", endpoint), logging.ERROR,
                               "os_trace_plugins: [profiler] sampling_endpoint: %s; "
                               "%s samples at sampling_rate", exc, self._service)
                    self._active, self._remote = self._ratio, None
                else:
                    self._active = self._remote = new
                    self._told = None
        if old is not None and old is not self._remote:
            old.close()

    def _tell(self, key: tuple[Any, ...], level: int, msg: str, *args: Any) -> None:
        if key != self._told:
            self._told = key
            LOG.log(level, msg, *args)

    def close(self) -> None:
        """Stop the poller, if any, and stop following the switches for good
        (``shutdown()``): a closed sampler decides by the ratio."""
        with self._lock:
            self._closed = True
            remote, self._remote, self._active = self._remote, None, self._ratio
        for name in _REMOTE_SWITCHES:
            SWITCHES.unsubscribe(name, self._listener)
        if remote is not None:
            remote.close()

    def get_description(self) -> str:
        return f"LiveRootSampler{{{self._active.get_description()}}}"


class ProfilerSampler(ParentBased):
    """The sampler ``setup()`` installs: parent-based over :class:`LiveRootSampler`.

    A class of its own so ``setup()`` can tell, through ``isinstance``,
    whether a host's provider already follows ``[profiler]`` sampling.
    """

    def __init__(self, service: str | None = None) -> None:
        self.root_sampler = LiveRootSampler(service)
        super().__init__(root=self.root_sampler)
        #: a child of an unsampled parent (local or remote) is always dropped
        #: with the parent's trace state kept (the SDK's ``ALWAYS_OFF``
        #: delegates of ``ParentBased``), whatever the root sampler (ratio or
        #: Jaeger remote): the hooks skip asking
        #: (:mod:`os_trace_plugins._sampling`); a test checks it through
        #: ``should_sample``
        self.drops_unsampled_children = True


def build_sampler(service: str | None = None, **_: Any) -> ProfilerSampler:
    """Parent-based: a sampled parent keeps the child, new roots follow
    ``[profiler] sampler``; ``service`` names the service in remote polls."""
    return ProfilerSampler(service)


def from_env(arg: Any = None) -> Sampler:
    """The SDK's ``OTEL_TRACES_SAMPLER`` factory (entry point group
    ``opentelemetry_traces_sampler``, name ``os_trace_plugins``).

    How a provider built by the SDK's configurator (``opentelemetry-instrument``)
    gets our sampler, so ``[profiler]`` sampling applies to it too: the
    options are read live from ``[profiler]`` once ``setup()`` bound them;
    ``OTEL_TRACES_SAMPLER_ARG`` is not used (``arg`` is ignored).
    """
    return ProfilerSampler()


def _resource_service() -> str:
    """``service.name`` as the SDK's configurator builds the resource
    (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``)."""
    try:
        name = Resource.create().attributes.get("service.name")
    except Exception:  # pragma: no cover - a broken resource detector
        name = None
    return str(name) if name else "unknown_service"


def jaeger_remote_from_env(arg: str | None = None) -> Sampler:
    """Entry point ``jaeger_remote``: a :class:`JaegerRemoteSampler` for any
    OpenTelemetry Python service, configured like the Java SDK's
    (``OTEL_TRACES_SAMPLER_ARG=endpoint=http://localhost:5778/sampling,``
    ``pollingIntervalMs=5000,initialSamplingRate=0.25``; ``endpoint`` is the
    HTTP sampling URL here, not the Java SDK's gRPC port 14250).  Until the
    endpoint answers, ``initialSamplingRate`` decides (default 0.001)."""
    args = parse_sampler_arg(arg)
    fallback = TraceIdRatioBased(args.initial_rate)
    return JaegerRemoteSampler(args.endpoint, _resource_service(), fallback, args.interval)


def parentbased_jaeger_remote_from_env(arg: str | None = None) -> Sampler:
    """Entry point ``parentbased_jaeger_remote``: the same, parent-based."""
    return ParentBased(root=jaeger_remote_from_env(arg))
