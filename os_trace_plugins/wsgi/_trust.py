"""Which parent context a request gets: the trust rules of the API edge.

In order:

1. OSProfiler ``X-Trace-Info`` + ``X-Trace-HMAC`` verified with any key of
   ``hmac_keys``: continue that trace (ids mapped as OSProfiler's OTLP driver
   maps them), always recorded.
2. ``traceparent`` + our ``X-OS-Trace-Signature`` verified: continue it as
   signed, with the signed flags (``sql``, ``root``). The sampled bit is part
   of the signed traceparent: ``os-trace sign`` / ``signed_headers()`` always
   set it (an operator's request is always recorded), and our outgoing hook
   signs the trace's own decision, so the next API neither resamples a
   recorded trace nor records an unsampled one.
3. ``traceparent`` alone: with ``trust_unsigned_traceparent`` it is continued
   as claimed; otherwise the request starts a new root (subject to
   ``sampling_rate``) with a span *link* to the claimed parent, so the
   relation is visible but an anonymous client neither picks the trace id
   nor forces sampling.
4. Nothing: a new root.

"Always recorded": a continued trace has a *sampled* remote parent, and the
provider's sampler is parent-based (``os_trace_plugins.export._sampler``); a
signed *root* (``Decision.root``) is started without a parent and with the
start attribute ``os_trace.trust``, which our root sampler keeps whatever
``sampling_rate`` says (the middleware, docs/wsgi.md).

Baggage: inbound ``baggage`` is kept only when the parent is trusted (1, 2,
or 3 with the option); ``os_trace.*`` entries are always removed from it and
set only from a verified signature, so no client can switch SQL tracing on.
A bad or forged signature never raises: one rate-limited log line, and the
request is handled as unsigned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry import baggage, trace
from opentelemetry.context import Context

from os_trace_plugins._flagged import SQL_BAGGAGE_KEY
from os_trace_plugins.export._propagation import BAGGAGE, TRACECONTEXT
from os_trace_plugins.wsgi import _signing as signing

__all__ = ["Decision", "decide"]

_OWN_PREFIX = "os_trace."

_SIG_KEY = "HTTP_" + signing.SIGNATURE_HEADER.upper().replace("-", "_")
_MAX_BAGGAGE = 8192


@dataclass
class Decision:
    """The outcome for one request."""

    context: Context | None = None  # parent context (None: new root)
    links: list[trace.Link] | None = None
    trust: str = "none"  # osprofiler | signed | unsigned-trusted | unsigned-linked | none
    #: the server span is a root that keeps the signer's trace id (the parent
    #: span of ``context`` names that trace id, and no span of its own)
    root: bool = False


def _extract_traceparent(environ: dict[str, Any]) -> trace.SpanContext | None:
    carrier = {"traceparent": environ.get("HTTP_TRACEPARENT", "")}
    state = environ.get("HTTP_TRACESTATE")
    if state:
        carrier["tracestate"] = state
    sc = trace.get_current_span(TRACECONTEXT.extract(carrier, context=Context())
                                ).get_span_context()
    return sc if sc.is_valid else None


def _with_baggage(ctx: Context, environ: dict[str, Any], sql: bool) -> Context:
    raw = environ.get("HTTP_BAGGAGE")
    if raw and len(raw) <= _MAX_BAGGAGE:
        ctx = BAGGAGE.extract({"baggage": raw}, context=ctx)
        for name in baggage.get_all(ctx):
            if name.startswith(_OWN_PREFIX):
                ctx = baggage.remove_baggage(name, ctx)
    if sql:
        ctx = baggage.set_baggage(SQL_BAGGAGE_KEY, "1", ctx)
    return ctx


def decide(environ: dict[str, Any], keys: tuple[str, ...], max_age: int,
           trust_unsigned: bool, accept_osprofiler: bool = True) -> Decision:
    """The parent context of the request described by ``environ``. Never raises
    for bad input (bad headers are logged at a bounded rate and ignored)."""
    if keys and accept_osprofiler and "HTTP_X_TRACE_INFO" in environ:
        osp = signing.osprofiler_verify(environ.get("HTTP_X_TRACE_INFO"),
                                        environ.get("HTTP_X_TRACE_HMAC"), keys)
        if osp is not None:
            ctx = trace.set_span_in_context(trace.NonRecordingSpan(
                signing.osprofiler_span_context(osp)), Context())
            return Decision(_with_baggage(ctx, environ, False), trust="osprofiler",
                            root=osp.base_id == osp.parent_id)
    if not keys and ("HTTP_X_TRACE_INFO" in environ or _SIG_KEY in environ):
        signing.BAD_INPUT.warning(
            "no-keys", "os_trace_plugins: a signed trace header arrived but [profiler] "
            "hmac_keys is empty (or only the public SECRET_KEY): treated as unsigned")
    if "HTTP_TRACEPARENT" not in environ:
        return Decision()
    claimed = _extract_traceparent(environ)
    if claimed is None:
        signing.BAD_INPUT.warning("tp-form", "os_trace_plugins: malformed traceparent "
                                  "header ignored")
        return Decision()
    if keys and _SIG_KEY in environ:
        signed = signing.verify_traceparent(environ.get("HTTP_TRACEPARENT"),
                                            environ.get(_SIG_KEY), keys, max_age)
        if signed is not None:
            # The sampled flag is covered by the signature: `os-trace sign` and
            # signed_headers() always set it; our requests hook signs the
            # trace's own decision so a downstream API does not resample.
            ctx = trace.set_span_in_context(trace.NonRecordingSpan(claimed), Context())
            return Decision(_with_baggage(ctx, environ, signed.sql), trust="signed",
                            root=signed.root)
    if trust_unsigned:
        ctx = trace.set_span_in_context(trace.NonRecordingSpan(claimed), Context())
        return Decision(_with_baggage(ctx, environ, False), trust="unsigned-trusted")
    link = trace.Link(claimed, {"os_trace.link": "unsigned_parent"})
    return Decision(links=[link], trust="unsigned-linked")
