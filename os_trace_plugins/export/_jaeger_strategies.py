"""Jaeger's sampling-strategy response: parsed into a spec, built into a decider.

The response of ``GET <endpoint>?service=NAME`` (Jaeger agent ``:5778/sampling``,
collector ``:14268/api/sampling``, Jaeger v2 ``remote_sampling``, the
OpenTelemetry Collector's ``jaegerremotesampling``)::

    {"strategyType": "PROBABILISTIC" | "RATE_LIMITING" | 0 | 1,
     "probabilisticSampling": {"samplingRate": 0.5},
     "rateLimitingSampling": {"maxTracesPerSecond": 10},
     "operationSampling": {"defaultSamplingProbability": 0.001,
                           "defaultLowerBoundTracesPerSecond": 0.1,
                           "defaultUpperBoundTracesPerSecond": 100,
                           "perOperationStrategies": [
                               {"operation": "POST /servers",
                                "probabilisticSampling": {"samplingRate": 1.0}}]}}

:func:`parse` turns it into an immutable, comparable *spec* (so an unchanged
answer keeps the running buckets); :func:`build` turns a spec into a
*decider* whose ``sampled(trace_id, name, attributes)`` is the whole per-root
cost.  Rules, from Jaeger's documentation and clients:

* ``operationSampling`` present wins; otherwise ``strategyType`` says which
  of the other two applies.  Older (thrift-JSON) agents send the type as an
  integer, 0 = PROBABILISTIC, 1 = RATE_LIMITING; proto3 JSON omits a zero
  value, so a missing type with ``probabilisticSampling`` present means
  PROBABILISTIC, a missing number means 0.  Proto field names
  (``strategy_type``, ``sampling_rate``...) are accepted as well as the
  lowerCamelCase ones.  Unknown fields are ignored; an unknown type, a
  missing strategy or a value that is not a number raises
  :class:`StrategyError`.
* Probabilistic: the low 64 bits of the trace id under ``rate * 2**64``, the
  SDK's ``TraceIdRatioBased`` rule, so both agree on the same trace id.
  Rates are clamped to [0, 1] as Jaeger's clients do.
* Rate limiting: a token bucket, ``maxTracesPerSecond`` credits a second,
  burst ``max(1, maxTracesPerSecond)``, shared by the process's threads.
* Per operation (Jaeger's "guaranteed throughput probabilistic" sampler): a
  listed operation samples at its rate, others at the default probability; a
  root the probability rejects is still sampled when the operation's floor
  bucket (``defaultLowerBoundTracesPerSecond``, 0: no floor) has a credit
  (a root the probability keeps spends one too, as in Jaeger's clients);
  with ``defaultUpperBoundTracesPerSecond`` > 0 a ceiling bucket caps the
  sampled roots per second of each operation.  The operation is the root
  span's name; when the start attributes carry ``http.request.method`` and
  ``url.path`` (the HTTP semantic conventions' sampling-relevant attributes)
  and ``"METHOD path"`` is a listed operation, that entry applies, because a
  WSGI SERVER span is named by its method until the router ran.  At most
  :data:`MAX_OPERATIONS` operations get buckets of their own (Jaeger's
  clients cap at 2000): beyond, unlisted names share the default
  probability with no floor, so hostile span names cannot grow memory.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from typing import Any

from os_trace_plugins.export._token_bucket import TokenBucket

__all__ = ["StrategyError", "Probabilistic", "RateLimiting", "PerOperation", "Spec",
           "parse", "build", "describe", "MAX_OPERATIONS", "bound_for"]

#: operations tracked with buckets of their own, at most (Jaeger's clients: 2000)
MAX_OPERATIONS = 2000
_LIMIT = (1 << 64) - 1


class StrategyError(ValueError):
    """The endpoint answered something that is not a strategy we can apply."""


@dataclass(frozen=True)
class Probabilistic:
    rate: float


@dataclass(frozen=True)
class RateLimiting:
    per_second: float


@dataclass(frozen=True)
class PerOperation:
    default_rate: float
    lower_bound: float
    upper_bound: float
    operations: tuple[tuple[str, float], ...]


Spec = Probabilistic | RateLimiting | PerOperation


def bound_for(rate: float) -> int:
    """The trace-id bound of ``rate``: the SDK's ``TraceIdRatioBased`` rule."""
    return round(rate * (_LIMIT + 1))


def describe(spec: Spec) -> str:
    """One short phrase for log lines."""
    if isinstance(spec, Probabilistic):
        return f"probabilistic {spec.rate:g}"
    if isinstance(spec, RateLimiting):
        return f"rate limiting {spec.per_second:g}/s"
    return (f"per operation ({len(spec.operations)} listed, default {spec.default_rate:g}, "
            f"floor {spec.lower_bound:g}/s, ceiling {spec.upper_bound:g}/s)")


# --- parsing ------------------------------------------------------------------

def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)


def _field(obj: dict[str, Any], camel: str) -> Any:
    value = obj.get(camel)
    return obj.get(_snake(camel)) if value is None else value


def _object(obj: dict[str, Any], camel: str) -> dict[str, Any] | None:
    value = _field(obj, camel)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise StrategyError(f"{camel} is not an object")
    return value


def _number(obj: dict[str, Any], camel: str) -> float:
    value = _field(obj, camel)
    if value is None:
        return 0.0  # proto3 JSON leaves zero values out
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StrategyError(f"{camel} is not a number: {value!r}")
    value = float(value)
    if math.isnan(value):
        raise StrategyError(f"{camel} is NaN")
    return value


def _rate(obj: dict[str, Any] | None) -> float:
    if obj is None:
        raise StrategyError("probabilisticSampling is missing")
    return min(1.0, max(0.0, _number(obj, "samplingRate")))


def _per_operation(op: dict[str, Any]) -> PerOperation:
    entries = _field(op, "perOperationStrategies") or []
    if not isinstance(entries, list):
        raise StrategyError("perOperationStrategies is not a list")
    operations: dict[str, float] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("operation"), str):
            raise StrategyError(f"a perOperationStrategies entry has no operation: {entry!r}")
        operations[entry["operation"]] = _rate(_object(entry, "probabilisticSampling"))
    return PerOperation(
        default_rate=min(1.0, max(0.0, _number(op, "defaultSamplingProbability"))),
        lower_bound=max(0.0, _number(op, "defaultLowerBoundTracesPerSecond")),
        upper_bound=max(0.0, _number(op, "defaultUpperBoundTracesPerSecond")),
        operations=tuple(sorted(operations.items())))


_TYPES = {"PROBABILISTIC": "PROBABILISTIC", "RATE_LIMITING": "RATE_LIMITING",
          0: "PROBABILISTIC", 1: "RATE_LIMITING"}


def parse(body: bytes | str) -> Spec:
    """The spec of one response body; :class:`StrategyError` when unusable."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StrategyError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise StrategyError("not a JSON object")
    op = _object(data, "operationSampling")
    if op is not None:
        return _per_operation(op)
    probabilistic = _object(data, "probabilisticSampling")
    limiting = _object(data, "rateLimitingSampling")
    raw = _field(data, "strategyType")
    if raw is None:
        raw = "PROBABILISTIC" if probabilistic is not None or limiting is None else 1
    if isinstance(raw, str):
        raw = raw.upper()
    kind = _TYPES.get(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) \
        else None
    if kind is None:
        raise StrategyError(f"unknown strategyType {raw!r}")
    if kind == "PROBABILISTIC":
        return Probabilistic(_rate(probabilistic))
    if limiting is None:
        raise StrategyError("strategyType RATE_LIMITING without rateLimitingSampling")
    return RateLimiting(max(0.0, _number(limiting, "maxTracesPerSecond")))


# --- deciding -----------------------------------------------------------------

class _Probabilistic:
    __slots__ = ("_bound",)

    def __init__(self, spec: Probabilistic) -> None:
        self._bound = bound_for(spec.rate)

    def sampled(self, trace_id: int, name: str, attributes: Any) -> bool:
        return trace_id & _LIMIT < self._bound


class _RateLimiting:
    __slots__ = ("_bucket",)

    def __init__(self, spec: RateLimiting) -> None:
        self._bucket = TokenBucket(spec.per_second, max(1.0, spec.per_second))

    def sampled(self, trace_id: int, name: str, attributes: Any) -> bool:
        return self._bucket.take()


class _Operation:
    """One operation's probability bound, floor and ceiling buckets."""

    __slots__ = ("bound", "floor", "ceiling")

    def __init__(self, rate: float, lower: float, upper: float) -> None:
        self.bound = bound_for(rate)
        self.floor = TokenBucket(lower, max(1.0, lower)) if lower > 0 else None
        self.ceiling = TokenBucket(upper, max(1.0, upper)) if upper > 0 else None

    def sampled(self, trace_id: int) -> bool:
        floor = self.floor
        if trace_id & _LIMIT < self.bound:
            if floor is not None:
                floor.take()  # Jaeger's clients: a sampled root spends a floor credit
        elif floor is None or not floor.take():
            return False
        ceiling = self.ceiling
        return ceiling is None or ceiling.take()


class _PerOperation:
    __slots__ = ("_spec", "_listed", "_ops", "_overflow", "_lock")

    def __init__(self, spec: PerOperation) -> None:
        self._spec = spec
        self._listed = dict(spec.operations)
        self._ops: dict[str, _Operation] = {
            name: _Operation(rate, spec.lower_bound, spec.upper_bound)
            for name, rate in spec.operations}
        self._overflow = _Operation(spec.default_rate, 0.0, 0.0)
        self._lock = threading.Lock()

    def sampled(self, trace_id: int, name: str, attributes: Any) -> bool:
        if attributes:
            method = attributes.get("http.request.method")
            if method is not None:
                key = f"{method} {attributes.get('url.path')}"
                if key in self._listed:
                    name = key
        op = self._ops.get(name)
        if op is None:
            op = self._track(name)
        return op.sampled(trace_id)

    def _track(self, name: str) -> _Operation:
        with self._lock:
            op = self._ops.get(name)
            if op is None:
                if len(self._ops) >= MAX_OPERATIONS + len(self._listed):
                    return self._overflow
                spec = self._spec
                op = self._ops[name] = _Operation(spec.default_rate, spec.lower_bound,
                                                  spec.upper_bound)
            return op

    @property
    def tracked(self) -> int:
        """Operations with buckets of their own (tests: the cap holds)."""
        return len(self._ops)


Decider = _Probabilistic | _RateLimiting | _PerOperation


def build(spec: Spec) -> Decider:
    """A fresh decider (new, full buckets) for ``spec``."""
    if isinstance(spec, Probabilistic):
        return _Probabilistic(spec)
    if isinstance(spec, RateLimiting):
        return _RateLimiting(spec)
    return _PerOperation(spec)
