"""Signed trace headers: ours (W3C traceparent + HMAC-SHA256) and OSProfiler's.

Why signatures: an API must not let an anonymous client pick trace ids or force
sampling (OSProfiler's operating model). Whoever holds a key of
``[profiler] hmac_keys`` can ask any API of the deployment to trace a request.

Our format, in one header next to a plain W3C ``traceparent``::

    X-OS-Trace-Signature: v1;t=<unix seconds>;f=<flags>;s=<hex HMAC-SHA256>

The HMAC covers ``v1``, the traceparent, the timestamp and the flags, so a
signature cannot be moved to another trace, renamed into another flag set or
kept beyond ``signature_max_age``. Flags: ``sql`` (record SQL statements of
this request everywhere it goes) and ``root`` (the signer had no span of its
own: the server span becomes the root of the trace).

OSProfiler's format (``X-Trace-Info`` = urlsafe base64 of a JSON object with
``base_id`` and ``parent_id``; ``X-Trace-HMAC`` = hex HMAC-SHA1 of the base64
text) is verified exactly as ``osprofiler._utils.signed_unpack`` does, with
size and shape checks first. It carries no timestamp, so it has no expiry.

The key never travels: only signatures do. OSProfiler's documented default
key ``SECRET_KEY`` is public knowledge and is never trusted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from opentelemetry import trace

from os_trace_plugins import _safety
from os_trace_plugins.export._propagation import format_traceparent

__all__ = [
    "SIGNATURE_HEADER",
    "X_TRACE_INFO",
    "X_TRACE_HMAC",
    "PUBLIC_KEYS",
    "OSProfilerTrace",
    "SignedTraceparent",
    "parse_keys",
    "sign_traceparent",
    "verify_traceparent",
    "osprofiler_pack",
    "osprofiler_verify",
    "osprofiler_span_context",
    "signed_headers",
    "osprofiler_headers",
    "osprofiler_trace_id",
]

LOG = logging.getLogger(__name__)
BAD_INPUT = _safety.RateLimitedLog(LOG)

SIGNATURE_HEADER = "X-OS-Trace-Signature"
X_TRACE_INFO = "X-Trace-Info"
X_TRACE_HMAC = "X-Trace-HMAC"

#: Keys that are published in docs and samples: never trusted.
PUBLIC_KEYS = frozenset({"SECRET_KEY"})

_VERSION = "v1"
_KNOWN_FLAGS = frozenset({"sql", "root"})
#: Allowed clock skew for a signature from the future, in seconds.
MAX_SKEW = 300
# Size bounds, checked before any decoding work.
_MAX_SIGNATURE = 256
_MAX_TRACEPARENT = 128
_MAX_TRACE_INFO = 1024
_MAX_TRACE_HMAC = 128
_MASK64 = (1 << 64) - 1
_warned_public: set[str] = set()


def parse_keys(raw: str | Iterable[str] | None) -> tuple[str, ...]:
    """``hmac_keys`` as a tuple: comma separated, spaces stripped, empties dropped.

    Public keys (OSProfiler's ``SECRET_KEY``) are dropped with one log line.
    """
    if not raw:
        return ()
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    keys: list[str] = []
    for item in items:
        key = str(item).strip()
        if not key:
            continue
        if key in PUBLIC_KEYS:
            if key not in _warned_public:
                _warned_public.add(key)
                # alone it is OSProfiler's default, which every service that
                # registers OSProfiler's options has: not worth a WARNING in each
                # log (``os-trace check`` warns); next to real keys it is a mistake
                level = logging.INFO if len(items) == 1 else logging.WARNING
                LOG.log(level, "[profiler] hmac_keys contains %s, OSProfiler's public "
                        "default key: it is ignored (signed trace headers need a "
                        "secret key)", key)
            continue
        if key not in keys:
            keys.append(key)
    return tuple(keys)


def _mac(key: str, message: str) -> str:
    return hmac.new(key.encode("utf-8"), message.encode("utf-8"),
                    hashlib.sha256).hexdigest()


def _message(traceparent: str, timestamp: int, flags: str) -> str:
    return f"{_VERSION}\n{traceparent}\n{timestamp}\n{flags}"


def sign_traceparent(key: str, traceparent: str, *, sql: bool = False, root: bool = False,
                     now: float | None = None) -> str:
    """The :data:`SIGNATURE_HEADER` value for ``traceparent`` signed with ``key``."""
    flags = ",".join(f for f, on in (("root", root), ("sql", sql)) if on)
    ts = int(time.time() if now is None else now)
    return f"{_VERSION};t={ts};f={flags};s={_mac(key, _message(traceparent, ts, flags))}"


@dataclass(frozen=True)
class SignedTraceparent:
    """A verified signature: which flags it carries."""

    sql: bool
    root: bool


def verify_traceparent(traceparent: str | None, signature: str | None,
                       keys: tuple[str, ...], max_age: int = 3600,
                       now: float | None = None) -> SignedTraceparent | None:
    """Check ``signature`` over ``traceparent`` with any of ``keys``.

    Returns the signed flags, or None (with one rate-limited log line) when
    the signature is malformed, stale, from the future or matches no key.
    Never raises.
    """
    if not keys or not signature or not traceparent:
        return None
    if len(signature) > _MAX_SIGNATURE or len(traceparent) > _MAX_TRACEPARENT:
        BAD_INPUT.warning("sig-size", "os_trace_plugins: oversized %s header ignored",
                          SIGNATURE_HEADER)
        return None
    fields: dict[str, str] = {}
    parts = signature.strip().split(";")
    if parts[0] != _VERSION:
        BAD_INPUT.warning("sig-form", "os_trace_plugins: malformed %s header ignored",
                          SIGNATURE_HEADER)
        return None
    for part in parts[1:]:
        name, sep, value = part.partition("=")
        if not sep or name in fields:
            fields = {}
            break
        fields[name] = value
    ts_text, flags, mac = fields.get("t", ""), fields.get("f"), fields.get("s", "")
    if (not ts_text.isascii() or not ts_text.isdigit() or len(ts_text) > 12
            or flags is None or len(mac) != 64):
        BAD_INPUT.warning("sig-form", "os_trace_plugins: malformed %s header ignored",
                          SIGNATURE_HEADER)
        return None
    ts = int(ts_text)
    message = _message(traceparent.strip(), ts, flags)
    if not any(hmac.compare_digest(mac, _mac(k, message)) for k in keys):
        BAD_INPUT.warning("sig-forged", "os_trace_plugins: %s header does not match any "
                          "of [profiler] hmac_keys; request treated as unsigned",
                          SIGNATURE_HEADER)
        return None
    current = time.time() if now is None else now
    if ts > current + MAX_SKEW or (max_age and current - ts > max_age):
        BAD_INPUT.warning("sig-stale", "os_trace_plugins: %s header is %ds old (limit: "
                          "[profiler] signature_max_age = %d); treated as unsigned",
                          SIGNATURE_HEADER, int(current - ts), max_age)
        return None
    names = set(flags.split(",")) - {""}
    if names - _KNOWN_FLAGS:
        BAD_INPUT.warning("sig-flags", "os_trace_plugins: unknown flags %s in %s ignored",
                          sorted(names - _KNOWN_FLAGS), SIGNATURE_HEADER)
    return SignedTraceparent(sql="sql" in names, root="root" in names)


# -- OSProfiler compatibility -------------------------------------------------

@dataclass(frozen=True)
class OSProfilerTrace:
    """A verified OSProfiler trace header."""

    base_id: str
    parent_id: str
    key: str


def osprofiler_pack(data: dict[str, str], key: str) -> tuple[str, str]:
    """(X-Trace-Info, X-Trace-HMAC) exactly as ``osprofiler._utils.signed_pack``."""
    info = base64.urlsafe_b64encode(json.dumps(data).encode("utf-8"))
    mac = hmac.new(key.encode("utf-8"), info, hashlib.sha1).hexdigest()
    return info.decode("ascii"), mac


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str) or len(value) > 40:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def osprofiler_verify(info: str | None, mac: str | None,
                      keys: tuple[str, ...]) -> OSProfilerTrace | None:
    """Verify OSProfiler's headers against ``keys``; None when not trusted. Never raises."""
    if not keys or not info or not mac:
        return None
    if len(info) > _MAX_TRACE_INFO or len(mac) > _MAX_TRACE_HMAC:
        BAD_INPUT.warning("osp-size", "os_trace_plugins: oversized %s header ignored",
                          X_TRACE_INFO)
        return None
    mac = mac.strip()
    raw = info.encode("utf-8", "replace")
    matched = next((k for k in keys if hmac.compare_digest(
        mac.encode("utf-8", "replace"),
        hmac.new(k.encode("utf-8"), raw, hashlib.sha1).hexdigest().encode())), None)
    if matched is None:
        BAD_INPUT.warning("osp-forged", "os_trace_plugins: %s/%s do not match any of "
                          "[profiler] hmac_keys; request treated as unsigned",
                          X_TRACE_INFO, X_TRACE_HMAC)
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw).decode("utf-8"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        data = None
    if (not isinstance(data, dict) or not set(data) <= {"base_id", "parent_id"}
            or not _is_uuid(data.get("base_id"))
            or not _is_uuid(data.get("parent_id", data.get("base_id")))):
        BAD_INPUT.warning("osp-form", "os_trace_plugins: signed %s is not the JSON "
                          "OSProfiler sends; ignored", X_TRACE_INFO)
        return None
    base_id = data["base_id"]
    return OSProfilerTrace(base_id, data.get("parent_id") or base_id, matched)


def osprofiler_span_context(t: OSProfilerTrace) -> trace.SpanContext:
    """The remote parent, mapped as ``osprofiler/drivers/otlp.py`` maps ids.

    trace_id = the 128-bit base_id, span_id = the low 64 bits of parent_id;
    always sampled (a signed request is always recorded).
    """
    span_id = uuid.UUID(t.parent_id).int & _MASK64 or 1
    return trace.SpanContext(trace_id=uuid.UUID(t.base_id).int, span_id=span_id,
                             is_remote=True,
                             trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))


# -- producing headers ----------------------------------------------------------

def signed_headers(key: str, *, sql: bool = False) -> dict[str, str]:
    """Headers that make an API holding ``key`` trust the current span context.

    With no current span, a fresh trace id is made and flagged ``root`` so the
    API's server span becomes the root of that trace. ``sql=True`` asks every
    service the request reaches to record its SQL statements.
    """
    ctx = trace.get_current_span().get_span_context()
    root = not ctx.is_valid
    if root:
        ctx = trace.SpanContext(trace_id=secrets.randbits(128) or 1,
                                span_id=secrets.randbits(64) or 1, is_remote=False)
    # always sampled: an operator's request is always recorded
    tp = format_traceparent(trace.SpanContext(
        ctx.trace_id, ctx.span_id, is_remote=False,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED)))
    return {"traceparent": tp, SIGNATURE_HEADER: sign_traceparent(key, tp, sql=sql,
                                                                  root=root)}


def osprofiler_headers(key: str) -> dict[str, str]:
    """OSProfiler-format headers (for an API still running OSProfiler's middleware).

    The current span's trace id becomes base_id; without a span a new one is made.
    """
    ctx = trace.get_current_span().get_span_context()
    base = str(uuid.UUID(int=ctx.trace_id)) if ctx.is_valid else str(uuid.uuid4())
    info, mac = osprofiler_pack({"base_id": base, "parent_id": base}, key)
    return {X_TRACE_INFO: info, X_TRACE_HMAC: mac}


def osprofiler_trace_id(info: str) -> str:
    """The OpenTelemetry trace id (hex) an OSProfiler ``X-Trace-Info`` maps to."""
    data = json.loads(base64.urlsafe_b64decode(info.encode("ascii")))
    return f"{uuid.UUID(data['base_id']).int:032x}"
