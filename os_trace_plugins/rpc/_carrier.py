"""The trace carrier inside the serialized request-context dict of a message.

oslo.messaging puts what the service serializer returned
(``RequestContextSerializer.serialize_context`` is ``context.to_dict()``) on
the wire next to the message.  The trace rides there as the W3C keys
``traceparent``, ``tracestate`` and ``baggage``: the keys oslo.messaging's own
``[oslo_messaging_tracing]`` writes and reads, so a mixed fleet stays one trace.

* :func:`inject` runs *after* the service serializer (``to_dict()`` would drop
  unknown keys) and writes into a copy: with the ``NoOpSerializer`` the dict is
  the caller's own object, possibly shared between threads.
* :func:`extract` reads them back, plus OSProfiler's ``trace_info``
  (``{"base_id", "parent_id", "hmac_key"}``), mapped the way OSProfiler's OTLP
  driver maps its ids (trace id = the 128-bit ``base_id``, span id = the low 64
  bits of ``parent_id``) so a trace begun under OSProfiler lines up.  Anything
  malformed is reported as a reason string (the caller logs it, rate-limited)
  and ignored: the message is still delivered.
* :func:`strip` removes the keys before the service's ``deserialize_context``
  sees them (a strict ``MyContext(**ctxt)`` would break), by replacing
  ``incoming.ctxt`` with a filtered copy: the fake driver hands one dict to
  every fanout consumer.

We never write ``trace_info``: its ``hmac_key`` would travel in clear text.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from os_trace_plugins.export._propagation import BAGGAGE, format_traceparent

__all__ = [
    "W3C_KEYS", "OSPROFILER_KEY", "ALL_KEYS", "MAX_VALUE_LENGTH",
    "inject", "extract", "strip", "from_trace_info",
]

W3C_KEYS = ("traceparent", "tracestate", "baggage")
OSPROFILER_KEY = "trace_info"
ALL_KEYS = frozenset(W3C_KEYS + (OSPROFILER_KEY,))
_W3C = frozenset(W3C_KEYS)

#: Longest carrier value we look at; W3C's own limits are 512 (tracestate)
#: and 8192 (baggage) bytes.
MAX_VALUE_LENGTH = 8192

_TRACEPARENT = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[ -~]*)?")
_MASK64 = (1 << 64) - 1
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)

_MISSING = object()


def inject(ctxt: Mapping[str, Any], sc: SpanContext, parent: Context | None = None,
           parent_holds_span: bool = False) -> dict[str, Any]:
    """A copy of ``ctxt`` carrying ``sc`` and the baggage of ``parent``.

    ``parent_holds_span``: the caller knows ``parent`` holds a span (its
    current span is valid), so a ``parent`` of one entry has no baggage and
    the baggage lookup (three frames) is skipped.

    Stale keys (an OSProfiler ``trace_info`` we continued, W3C keys another
    emitter wrote) are replaced or dropped so the wire holds one carrier.
    """
    out = dict(ctxt)
    out["traceparent"] = format_traceparent(sc)
    if sc.trace_state:
        out["tracestate"] = sc.trace_state.to_header()
    else:
        out.pop("tracestate", None)
    out.pop("baggage", None)
    if parent and (len(parent) > 1 or not parent_holds_span) and baggage.get_all(parent):
        BAGGAGE.inject(out, context=parent)
    return out


def strip(incoming: Any, keys: frozenset[str] = _W3C) -> None:
    """Remove trace keys from ``incoming.ctxt`` (a filtered copy, never in place)."""
    ctxt = incoming.ctxt
    if type(ctxt) is dict and not keys.isdisjoint(ctxt):
        copy = dict(ctxt)
        for key in keys:
            copy.pop(key, None)
        incoming.ctxt = copy


def _parse_traceparent(value: Any) -> SpanContext | str:
    if not isinstance(value, str):
        return f"traceparent is a {type(value).__name__}, not a string"
    if len(value) > 512:
        return f"traceparent is {len(value)} characters long"
    m = _TRACEPARENT.fullmatch(value)
    if m is None:
        return "traceparent is not W3C trace-context (version-traceid-spanid-flags)"
    version, tid, sid, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest):
        return f"traceparent has an invalid version {version!r}"
    trace_id, span_id = int(tid, 16), int(sid, 16)
    if not trace_id or not span_id:
        return "traceparent has an all-zero trace or span id"
    return SpanContext(trace_id, span_id, True,
                       TraceFlags(int(flags, 16)))  # every bit, as the W3C propagator


def _trace_state(value: Any) -> TraceState | None:
    if not isinstance(value, str) or len(value) > 512:
        return None
    return TraceState.from_header([value])


def _uuid_int(value: Any) -> int | None:
    if isinstance(value, str) and len(value) <= 64:
        try:
            return uuid.UUID(value).int
        except ValueError:
            return None
    return None


def from_trace_info(info: Any) -> SpanContext | str:
    """Map OSProfiler's ``trace_info`` to a remote, sampled span context.

    As OSProfiler's OTLP driver does: trace id = ``UUID(base_id).int``, parent
    span id = the low 64 bits of ``UUID(parent_id)``.  The ``hmac_key`` is
    ignored (nothing signs RPC contexts; it is only ever a leak).
    """
    if not isinstance(info, Mapping):
        return f"trace_info is a {type(info).__name__}, not a dict"
    trace_id = _uuid_int(info.get("base_id"))
    parent = _uuid_int(info.get("parent_id"))
    if not trace_id or parent is None:
        return "trace_info has no valid base_id/parent_id UUIDs"
    span_id = parent & _MASK64
    if not span_id:
        return "trace_info parent_id maps to a zero span id"
    return SpanContext(trace_id, span_id, True, _SAMPLED)


def _with_span(sc: SpanContext, parent: Context | None) -> Context:
    # an explicit Context(): set_span_in_context(span) alone would copy the
    # *current* context, whatever the worker thread had
    return trace.set_span_in_context(NonRecordingSpan(sc), parent or Context())


def extract(ctxt: Any, osprofiler: bool = True,
            ) -> tuple[SpanContext | None, Context, str | None]:
    """Read the carrier of an incoming context dict.

    Returns ``(span_context or None, parent Context, problem or None)``: the
    parent context holds the remote span (when valid) and the baggage; a
    ``problem`` names what was wrong with a carrier that had to be ignored.
    W3C wins over ``trace_info`` when both are present and valid.
    """
    if type(ctxt) is not dict:
        return None, Context(), None
    problem: str | None = None
    sc: SpanContext | None = None
    raw = ctxt.get("traceparent", _MISSING)
    if raw is not _MISSING:
        parsed = _parse_traceparent(raw)
        if isinstance(parsed, str):
            problem = parsed
        else:
            sc = parsed
            state = ctxt.get("tracestate")
            if state is not None:
                ts = _trace_state(state)
                if ts is None:
                    problem = "tracestate is not a short string; ignored"
                elif ts:
                    sc = SpanContext(parsed.trace_id, parsed.span_id, True,
                                     parsed.trace_flags, ts)
    if sc is None and osprofiler and OSPROFILER_KEY in ctxt:
        parsed = from_trace_info(ctxt[OSPROFILER_KEY])
        if isinstance(parsed, str):
            problem = parsed if problem is None else f"{problem}; {parsed}"
        else:
            sc, problem = parsed, None
    parent: Context | None = None
    raw_baggage = ctxt.get("baggage")
    if raw_baggage is not None:
        if isinstance(raw_baggage, str) and len(raw_baggage) <= MAX_VALUE_LENGTH:
            parent = BAGGAGE.extract({"baggage": raw_baggage}, context=Context())
        else:
            problem = problem or "baggage is not a string of at most 8192 characters"
    if sc is not None:
        return sc, _with_span(sc, parent), problem
    return None, parent or Context(), problem
