"""Outgoing HTTP: CLIENT spans and trace headers for calls to other services.

``RequestsHook`` (entry point ``requests``, switch ``[profiler] trace_requests``,
OSProfiler's name) wraps ``requests.sessions.Session.send`` with the core
patching mechanism (a wrapt wrapper applied when the service imports
``requests``; nothing of ``requests`` is imported by instrumenting). While the
switch is off the wrapper is one attribute check and a straight call. While
on, each call gets a CLIENT span and the request carries:

- ``traceparent`` (+ ``baggage``) of that CLIENT span;
- with a key in ``[profiler] hmac_keys``: our ``X-OS-Trace-Signature`` over that
  traceparent (and the ``sql`` flag when the current request asked for SQL
  tracing), so the next API of the deployment trusts it. The key itself never
  travels.
- with ``send_osprofiler_headers`` too, for a recorded trace: OSProfiler's
  ``X-Trace-Info``/``X-Trace-HMAC`` (base_id = the trace id as a UUID,
  parent_id = the CLIENT span id as a UUID, which OSProfiler's OTLP driver
  maps back to the same ids), for APIs still running OSProfiler.

``url.full`` keeps the query's keys but not its values (``?temp_url_sig=REDACTED``,
semantic-conventions style): Swift temp URL signatures and tokens travel there.
Credentials in the URL are dropped.

Beside contrib's ``RequestsInstrumentor`` (either order), one CLIENT span per
request: when ours is outer it calls through under
``suppress_http_instrumentation()``, which contrib (and urllib3's
instrumentation) honour; when contrib is outer it has started the span and
injected its ``traceparent`` under the same suppression, and ours only signs
that traceparent.

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
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import baggage, trace
from opentelemetry import context as _context
from opentelemetry.trace import SpanKind, Status, StatusCode

from os_trace_plugins import _hooks, _safety, opts
from os_trace_plugins._errors import record_error
from os_trace_plugins._flagged import SQL_BAGGAGE_KEY
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.export._propagation import PROPAGATOR, format_traceparent
from os_trace_plugins.wsgi import _signing as signing

__all__ = ["RequestsHook", "keystoneauth_headers", "signing_key", "redact_url"]

LOG = logging.getLogger(__name__)

# The key the SDK's span processors set around an export (private to the API:
# the public readers are in opentelemetry-instrumentation, an optional
# dependency; docs/wsgi.md lists this use with its test).
_SUPPRESS = getattr(_context, "_SUPPRESS_INSTRUMENTATION_KEY", "suppress_instrumentation")


def _api_enabled() -> bool:
    """Whether instrumentation is not suppressed, read with the API alone."""
    return not _context.get_value(_SUPPRESS)


@contextmanager
def _no_suppression() -> Iterator[None]:
    yield


_enabled: Callable[[], bool] = _api_enabled
_http_enabled: Callable[[], bool] = _api_enabled
_suppress_http: Callable[[], AbstractContextManager[None]] = _no_suppression
try:  # the public suppression API (contrib's instrumentations need this package)
    from opentelemetry.instrumentation import utils as _utils
except ImportError:  # pragma: no cover - then no contrib instrumentation either
    pass
else:
    _enabled = _utils.is_instrumentation_enabled
    _http_enabled = _utils.is_http_instrumentation_enabled
    _suppress_http = _utils.suppress_http_instrumentation

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


def _redact_query(query: str) -> str:
    items = []
    for item in query.split("&"):
        if item:
            name, sep, _ = item.partition("=")
            items.append(name + "=REDACTED" if sep else name)
    return "&".join(items)


def redact_url(url: str) -> tuple[str, str, int | None]:
    """(``url.full``, host, port): no credentials, no fragment, query values
    replaced by ``REDACTED`` (keys kept)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host if ":" not in host else f"[{host}]"
    if parts.port:
        netloc += f":{parts.port}"
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    full = urlunsplit((parts.scheme, netloc, parts.path, _redact_query(parts.query), ""))
    return full, host, port


def _sign(headers: Any, sc: trace.SpanContext, traceparent: str, key: str) -> None:
    """Our signature (and OSProfiler's pair, when asked) for ``traceparent``."""
    headers[signing.SIGNATURE_HEADER] = signing.sign_traceparent(
        key, traceparent, sql=_sql_requested())
    if sc.trace_flags.sampled and SWITCHES.send_osprofiler_headers:
        # OSProfiler records whatever it is handed: only recorded traces
        info, mac = signing.osprofiler_pack(
            {"base_id": str(uuid.UUID(int=sc.trace_id)),
             "parent_id": str(uuid.UUID(int=sc.span_id))}, key)
        headers[signing.X_TRACE_INFO] = info
        headers[signing.X_TRACE_HMAC] = mac


def _sign_injected(request: Any) -> None:
    """An outer HTTP instrumentation owns the span: sign the traceparent it
    injected for the current span (only that one)."""
    key = signing_key()
    headers = getattr(request, "headers", None)
    if not key or headers is None:
        return
    sc = trace.get_current_span().get_span_context()
    injected = headers.get("traceparent")
    if sc.is_valid and injected == format_traceparent(sc):
        _sign(headers, sc, injected, key)


class RequestsHook(_hooks.Hook):
    """CLIENT spans and signed trace headers for ``requests`` calls."""

    name: ClassVar[str] = "requests"
    option: ClassVar[str | None] = "trace_requests"

    def _instrument(self) -> None:
        keys: tuple[str, ...] = ()
        if self.conf is not None:
            group = _safety.safe_call("reading [profiler] hmac_keys",
                                      getattr, self.conf, opts.GROUP)
            keys = signing.parse_keys(getattr(group, "hmac_keys", "") or "")
        _state["key"] = keys[0] if keys else None
        self.patch("requests.sessions", "Session.send", self._send)

    def _uninstrument(self) -> None:
        _state["key"] = None

    def _send(self, wrapped: Callable[..., Any], instance: Any,
              args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not SWITCHES.trace_requests or not _enabled():
            return wrapped(*args, **kwargs)
        request = args[0] if args else kwargs.get("request")
        if not _http_enabled():  # contrib's span is current, its headers are in
            _safety.safe_call("requests hook (sign)", _sign_injected, request)
            return wrapped(*args, **kwargs)
        span = _safety.safe_call("requests hook (start)", self._start, request)
        if span is None:
            return wrapped(*args, **kwargs)
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False,
                                set_status_on_exception=False), _suppress_http():
                response = wrapped(*args, **kwargs)
        except BaseException as exc:
            _safety.safe_call("requests hook (error)", self._finish, span, None, exc)
            raise
        _safety.safe_call("requests hook (finish)", self._finish, span, response, None)
        return response

    def _start(self, request: Any) -> trace.Span:
        method = str(request.method or "GET").upper()
        span = self.tracer.start_span(method, kind=SpanKind.CLIENT)
        if span.is_recording():
            url, host, port = redact_url(str(request.url))
            attrs: dict[str, Any] = {"http.request.method": method, "url.full": url}
            if host:
                attrs["server.address"] = host
            if port:
                attrs["server.port"] = port
            span.set_attributes(attrs)
        headers = request.headers
        key = signing_key()
        if signing.SIGNATURE_HEADER in headers and not key:
            return span  # keep the caller's signed pair intact: we cannot re-sign
        carrier: dict[str, str] = {}
        PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        for name, value in carrier.items():
            headers[name] = value
        sc = span.get_span_context()
        if key and sc.is_valid:
            _sign(headers, sc, carrier["traceparent"], key)
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
