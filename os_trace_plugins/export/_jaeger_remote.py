"""Jaeger remote-controlled sampling: a poller thread and the sampler it feeds.

Operators set rates centrally (a Jaeger agent or collector, Jaeger v2's
``remote_sampling`` extension, the OpenTelemetry Collector's
``jaegerremotesampling`` extension) instead of editing 500 nodes.  A daemon
thread polls ``GET <endpoint>?service=<service.name>`` every ``interval``
seconds (jittered by +-10% so a fleet restarted together does not poll in
step), parses the answer (:mod:`._jaeger_strategies`) and swaps an immutable
*decider* into one attribute.  ``should_sample`` reads that attribute once:
it never takes the poller's lock, never waits on the HTTP request, and until
the first good answer it asks the ``fallback`` sampler.

Failures (refused, hanging past the timeout, HTTP 500, not JSON, an unknown
strategy type) keep the previous strategy, or the fallback when there was
none, and log one WARNING per failure streak; the next good answer logs one
INFO line.  The thread holds only a weak reference to its sampler, so a
replaced sampler's thread ends at its next wake-up, and :meth:`close` ends it
at once.  Fork-safe: a forked child (``os.register_at_fork``) gets fresh
locks and buckets and starts its own poller.

Public factories over this module live in :mod:`os_trace_plugins.export._sampler`
(the ``opentelemetry_traces_sampler`` entry points and ``[profiler] sampler``).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from os_trace_plugins import _safety
from os_trace_plugins._version import __version__
from os_trace_plugins.export import _jaeger_strategies as strategies
from os_trace_plugins.export._trust import ALWAYS_KEPT, TRUST_ATTRIBUTE

__all__ = ["JaegerRemoteSampler", "check_endpoint", "fetch_strategy", "describe_failure",
           "DEFAULT_ENDPOINT", "DEFAULT_INTERVAL", "DEFAULT_INITIAL_RATE"]

LOG = logging.getLogger("os_trace_plugins")

#: the Jaeger agent's and the OpenTelemetry Collector extension's HTTP endpoint
DEFAULT_ENDPOINT = "http://localhost:5778/sampling"
DEFAULT_INTERVAL = 60.0
#: the Java SDK's default initialSamplingRate
DEFAULT_INITIAL_RATE = 0.001
#: a strategies answer larger than this is refused (a hostile or broken endpoint)
MAX_BODY = 1 << 20

_LIVE: weakref.WeakSet[JaegerRemoteSampler] = weakref.WeakSet()
_fork_hook = False
_fork_lock = threading.Lock()


def check_endpoint(url: str) -> str:
    """``url`` if it is an http(s) URL with a host, else ValueError."""
    parts = urllib.parse.urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"sampling endpoint {url!r} is not an http:// or https:// URL "
                         "(for example http://localhost:5778/sampling)")
    return url


def _url(endpoint: str, service: str) -> str:
    sep = "&" if urllib.parse.urlsplit(endpoint).query else "?"
    return f"{endpoint}{sep}{urllib.parse.urlencode({'service': service})}"


def _fetch(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={
        "Accept": "application/json", "User-Agent": f"os_trace_plugins/{__version__}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: bytes = response.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise strategies.StrategyError(f"answer larger than {MAX_BODY} bytes")
    return body


def fetch_strategy(endpoint: str, service: str, timeout: float = 5.0) -> bytes:
    """One answer of ``endpoint`` for ``service`` (``os-trace check``)."""
    return _fetch(_url(check_endpoint(endpoint), service), timeout)


def describe_failure(exc: BaseException) -> str:
    """What went wrong with a poll, in a few words."""
    return _reason(exc)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"unreachable: {exc.reason}"
    if isinstance(exc, TimeoutError):
        return "no answer within the timeout"
    return f"{type(exc).__name__}: {exc}"


def _parent_trace_state(parent_context: Context | None) -> TraceState | None:
    span_context = get_current_span(parent_context).get_span_context()
    return span_context.trace_state if span_context.is_valid else None


class JaegerRemoteSampler(Sampler):
    """Sample roots by the strategy ``endpoint`` serves for ``service``.

    A root whose start attributes say the edge verified its signature
    (``os_trace.trust``) is always kept.  Not parent-based by itself: wrap it
    in ``ParentBased`` (``parentbased_jaeger_remote``) as usual.
    """

    def __init__(self, endpoint: str, service: str, fallback: Sampler,
                 interval: float = DEFAULT_INTERVAL, *, initial: strategies.Spec | None = None,
                 timeout: float | None = None, start: bool = True) -> None:
        self.endpoint = check_endpoint(endpoint)
        self.service = service or "unknown_service"
        self.fallback = fallback
        self._timeout = timeout
        self.interval = interval
        self._url = _url(self.endpoint, self.service)
        self._spec: strategies.Spec | None = initial
        self._decider: strategies.Decider | None = (
            strategies.build(initial) if initial is not None else None)
        self._failing = False
        self._closed = False
        self._init_sync()
        if start:
            self.start()

    def _init_sync(self) -> None:
        self._lock = threading.Lock()
        self._polled = threading.Condition(self._lock)
        self._polls = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the request path ---------------------------------------------------
    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: TraceState | None = None) -> SamplingResult:
        if attributes and attributes.get(TRUST_ATTRIBUTE) in ALWAYS_KEPT:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes,
                                  _parent_trace_state(parent_context))
        decider = self._decider
        if decider is None:
            return self.fallback.should_sample(parent_context, trace_id, name, kind,
                                               attributes, links, trace_state)
        if decider.sampled(trace_id, name, attributes):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes,
                                  _parent_trace_state(parent_context))
        return SamplingResult(Decision.DROP, None, _parent_trace_state(parent_context))

    def get_description(self) -> str:
        spec = self._spec
        now = strategies.describe(spec) if spec is not None else \
            f"fallback {self.fallback.get_description()}"
        return f"JaegerRemoteSampler{{{self.endpoint}, service={self.service}, {now}}}"

    @property
    def interval(self) -> float:
        """Seconds between polls; settable live (the next wait uses it)."""
        return self._interval

    @interval.setter
    def interval(self, value: float) -> None:
        self._interval = max(0.05, float(value))
        self.timeout = (self._timeout if self._timeout is not None
                        else min(5.0, max(0.2, self._interval)))

    # --- what tests and the live root sampler read --------------------------
    @property
    def spec(self) -> strategies.Spec | None:
        """The strategy applied now (None: the fallback decides)."""
        return self._spec

    @property
    def key(self) -> tuple[str, str]:
        """What a new poller is needed for (the interval changes in place)."""
        return (self.endpoint, self.service)

    @property
    def alive(self) -> bool:
        """Whether the poller thread runs (it ends soon after :meth:`close`)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def join(self, timeout: float) -> None:
        """Wait for the poller thread to end (tests; ``close()`` first)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    @property
    def polls(self) -> int:
        """Polls finished since the poller started (answered or failed)."""
        return self._polls

    def wait_polls(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` polls finished since start (tests, never the
        request path); True if they did."""
        with self._polled:
            return self._polled.wait_for(lambda: self._polls >= count, timeout)

    # --- the poller ---------------------------------------------------------
    def start(self) -> None:
        """Start the poller thread (idempotent); the first poll is immediate."""
        global _fork_hook
        with self._lock:
            if self._closed or self._thread is not None:
                return
            self._thread = threading.Thread(
                target=_loop, args=(weakref.ref(self), self._stop),
                name=f"os-trace-jaeger-sampling-{self.service}", daemon=True)
            self._thread.start()
        _LIVE.add(self)
        with _fork_lock:
            if not _fork_hook:
                os.register_at_fork(after_in_child=_after_fork_in_child)
                _fork_hook = True

    def close(self) -> None:
        """Stop polling (does not wait for a request in flight)."""
        with self._lock:
            self._closed = True
            self._stop.set()
        _LIVE.discard(self)

    def poll(self) -> None:
        """One poll: fetch, parse, swap (the poller thread calls this)."""
        try:
            spec = strategies.parse(_fetch(self._url, self.timeout))
        except Exception as exc:  # every failure of the endpoint, by design
            self._failed(_reason(exc))
        else:
            self._apply(spec)
        with self._polled:
            self._polls += 1
            self._polled.notify_all()

    def _apply(self, spec: strategies.Spec) -> None:
        recovered, self._failing = self._failing, False
        if spec != self._spec:
            self._decider = strategies.build(spec)  # one attribute: the atomic swap
            self._spec = spec
            LOG.info("os_trace_plugins: sampling strategy for %s from %s is now %s",
                     self.service, self.endpoint, strategies.describe(spec))
        elif recovered:
            LOG.info("os_trace_plugins: sampling strategy for %s from %s answers again "
                     "(%s)", self.service, self.endpoint, strategies.describe(spec))

    def _failed(self, reason: str) -> None:
        if self._failing:
            LOG.debug("os_trace_plugins: sampling endpoint %s still failing: %s",
                      self.endpoint, reason)
            return
        self._failing = True
        spec = self._spec
        keeping = (f"keeping {strategies.describe(spec)}" if spec is not None else
                   f"sampling with the fallback {self.fallback.get_description()}")
        LOG.warning("os_trace_plugins: no sampling strategy for %s from %s (%s); %s "
                    "until it answers (logged once per failure streak)",
                    self.service, self.endpoint, reason, keeping)

    def _after_fork(self) -> None:
        """In a forked child: fresh locks and buckets, a poller of its own."""
        running = self._thread is not None and not self._closed
        self._init_sync()
        if self._spec is not None:
            self._decider = strategies.build(self._spec)
        if running:
            self.start()


def _loop(ref: weakref.ref[JaegerRemoteSampler], stop: threading.Event) -> None:
    while not stop.is_set():
        sampler = ref()
        if sampler is None:  # replaced and collected
            return
        _safety.safe_call("jaeger remote sampling poller", sampler.poll)
        interval = sampler.interval
        del sampler
        if stop.wait(interval * random.uniform(0.9, 1.1)):  # jitter
            return


def _after_fork_in_child() -> None:
    for sampler in list(_LIVE):
        _safety.safe_call("jaeger remote sampling after fork", sampler._after_fork)
