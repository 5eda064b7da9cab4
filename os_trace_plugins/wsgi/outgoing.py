"""Outgoing HTTP: CLIENT spans and trace headers for calls to other services.

``RequestsHook`` (entry point ``requests``, switch ``[profiler] trace_requests``,
OSProfiler's name) patches ``requests.Session.send`` once; while the switch is
off the patched method is one attribute check and a straight call. While on,
each call gets a CLIENT span and the request carries:

- ``traceparent`` (+ ``baggage``) of that CLIENT span;
- with a key in ``[profiler] hmac_keys``: our ``X-OS-Trace-Signature`` over that
  traceparent (and the ``sql`` flag when the current request asked for SQL
  tracing), so the next API of the deployment trusts it. The key itself never
  travels.
- with ``send_osprofiler_headers`` too, for a recorded trace: OSProfiler's
  ``X-Trace-Info``/``X-Trace-HMAC`` (base_id = the trace id as a UUID,
  parent_id = the CLIENT span id as a UUID, which OSProfiler's OTLP driver
  maps back to the same ids), for APIs still running OSProfiler.

keystoneauth sessions and the python-*client libraries send through
``requests``, so the hook covers them. :func:`keystoneauth_headers` is for code
that sets headers itself (``session.get(url, headers=keystoneauth_headers())``),
e.g. while the hook is off. An operator's "trace this one request" is
:func:`os_trace_plugins.wsgi.signed_headers` instead (always recorded).

Calls made while instrumentation is suppressed (the OTLP exporter's own POSTs)
are never traced.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import baggage, context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from os_trace_plugins import _hooks, _safety, opts
from os_trace_plugins._errors import record_error
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.export.propagation import PROPAGATOR
from os_trace_plugins.wsgi import signing
from os_trace_plugins.wsgi.trust import SQL_BAGGAGE_KEY

__all__ = ["RequestsHook", "keystoneauth_headers", "signing_key"]

LOG = logging.getLogger(__name__)

_SUPPRESS = getattr(context, "_SUPPRESS_INSTRUMENTATION_KEY", "suppress_instrumentation")

#: The key used to sign outgoing calls (the first of hmac_keys), set by the hook.
_state: dict[str, Any] = {"key": None}


def signing_key() -> str | None:
    """The key outgoing calls are signed with (first usable key of hmac_keys)."""
    return _state["key"]  # type: ignore[no-any-return]


def _sql_requested() -> bool:
    return baggage.get_baggage(SQL_BAGGAGE_KEY) == "1"


def keystoneauth_headers(key: str | None = None, *, sql: bool | None = None,
                         ) -> dict[str, str]:
    """Trace headers for one keystoneauth/requests call, computed now.

    The current span context (and baggage) as W3C headers, plus our signature
    when a key is at hand (``key``, else the configured signing key), exactly
    what the ``requests`` hook sends: the next API continues the trace with
    its sampling decision kept. ``sql`` defaults to whether the current request
    asked for SQL tracing. No current span: no headers. Never raises.
    """
    def build() -> dict[str, str]:
        carrier: dict[str, str] = {}
        PROPAGATOR.inject(carrier)
        use_key = key or signing_key()
        if use_key and "traceparent" in carrier:
            want_sql = _sql_requested() if sql is None else sql
            carrier[signing.SIGNATURE_HEADER] = signing.sign_traceparent(
                use_key, carrier["traceparent"], sql=want_sql)
        return carrier
    return _safety.safe_call("keystoneauth_headers", build, default={}) or {}


def _redact(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host if ":" not in host else f"[{host}]"
    if parts.port:
        netloc += f":{parts.port}"
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), host, port


class RequestsHook(_hooks.Hook):
    """CLIENT spans and signed trace headers for ``requests`` calls."""

    name: ClassVar[str] = "requests"
    option: ClassVar[str | None] = "trace_requests"
    requires: ClassVar[tuple[str, ...]] = ("requests",)

    _original: Any = None

    def _instrument(self) -> None:
        import requests

        keys: tuple[str, ...] = ()
        if self.conf is not None:
            group = _safety.safe_call("reading [profiler] hmac_keys",
                                      getattr, self.conf, opts.GROUP)
            keys = signing.parse_keys(getattr(group, "hmac_keys", "") or "")
        _state["key"] = keys[0] if keys else None
        original = requests.Session.send
        hook = self

        def send(session: Any, request: Any, **kwargs: Any) -> Any:
            if not SWITCHES.trace_requests or context.get_value(_SUPPRESS):
                return original(session, request, **kwargs)
            span = _safety.safe_call("requests hook (start)", hook._start, request)
            if span is None:
                return original(session, request, **kwargs)
            try:
                with trace.use_span(span, end_on_exit=False, record_exception=False,
                                    set_status_on_exception=False):
                    response = original(session, request, **kwargs)
            except BaseException as exc:
                _safety.safe_call("requests hook (error)", hook._finish, span, None, exc)
                raise
            _safety.safe_call("requests hook (finish)", hook._finish, span, response, None)
            return response

        send.__wrapped__ = original  # type: ignore[attr-defined]
        self._original = original
        requests.Session.send = send  # type: ignore[method-assign,assignment]

    def _uninstrument(self) -> None:
        import requests

        if self._original is not None:
            requests.Session.send = self._original  # type: ignore[method-assign]
            self._original = None
        _state["key"] = None

    def _start(self, request: Any) -> trace.Span:
        method = str(request.method or "GET").upper()
        span = self.tracer.start_span(method, kind=SpanKind.CLIENT)
        if span.is_recording():
            url, host, port = _redact(str(request.url))
            attrs: dict[str, Any] = {"http.request.method": method, "url.full": url}
            if host:
                attrs["server.address"] = host
            if port:
                attrs["server.port"] = port
            span.set_attributes(attrs)
        headers = request.headers
        ctx = trace.set_span_in_context(span)
        key = signing_key()
        if signing.SIGNATURE_HEADER in headers and not key:
            return span  # keep the caller's signed pair intact: we cannot re-sign
        carrier: dict[str, str] = {}
        PROPAGATOR.inject(carrier, context=ctx)
        for name, value in carrier.items():
            headers[name] = value
        sc = span.get_span_context()
        if key and sc.is_valid:
            headers[signing.SIGNATURE_HEADER] = signing.sign_traceparent(
                key, carrier["traceparent"], sql=_sql_requested())
            if sc.trace_flags.sampled and SWITCHES.send_osprofiler_headers:
                # OSProfiler records whatever it is handed: only recorded traces
                info, mac = signing.osprofiler_pack(
                    {"base_id": str(uuid.UUID(int=sc.trace_id)),
                     "parent_id": str(uuid.UUID(int=sc.span_id))}, key)
                headers[signing.X_TRACE_INFO] = info
                headers[signing.X_TRACE_HMAC] = mac
        return span

    @staticmethod
    def _finish(span: trace.Span, response: Any, exc: BaseException | None) -> None:
        try:
            if response is not None:
                code = int(response.status_code)
                span.set_attribute("http.response.status_code", code)
                if code >= 400:
                    span.set_attribute("error.type", str(code))
                    span.set_status(Status(StatusCode.ERROR))
            if exc is not None:
                record_error(span, exc)
        finally:
            span.end()
