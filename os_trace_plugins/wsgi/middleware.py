"""``TracingMiddleware``: one SERVER span per request at the API edge.

As a paste filter (``api-paste.ini``)::

    [filter:tracing]
    paste.filter_factory = os_trace_plugins.wsgi:TracingMiddleware.factory
    # or: use = egg:os_trace_plugins#os_trace_plugins

or around any WSGI app (Flask, Pecan...)::

    app.wsgi_app = TracingMiddleware(app.wsgi_app, conf=CONF)

Put it early in the pipeline (before auth): the span then covers the whole
request, and ``openstack.*`` ids are read from the environ *after* the inner
apps ran (request id from oslo.middleware's ``RequestId``, user and project
from keystonemiddleware's headers or the service's oslo.context).

Which inbound headers are trusted is decided in :mod:`.trust`. The resting
cost is one attribute check (``[profiler] trace_wsgi`` off); an unsampled
request without trace headers pays a non-recording span and a context
attach/detach (see ``docs/bench/wsgi.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextvars import Token
from typing import Any

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from os_trace_plugins import _safety, opts
from os_trace_plugins._errors import record_error
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins._version import __version__
from os_trace_plugins.export.presample import Presampler, make_root, start_root
from os_trace_plugins.wsgi import signing, trust
from os_trace_plugins.wsgi.attributes import (
    KNOWN_METHODS,
    finish_attributes,
    request_attributes,
)

__all__ = ["TracingMiddleware"]

LOG = logging.getLogger(__name__)

WSGIApp = Callable[..., Iterable[bytes]]
_EMPTY = Context()
_FALSE = ("0", "false", "no", "off")
_TRUE = ("1", "true", "yes", "on")


def _bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


class TracingMiddleware:
    """WSGI middleware creating a SERVER span for each request."""

    def __init__(self, app: WSGIApp, conf: Any = None, **local_conf: Any) -> None:
        self.app = app
        self._conf = conf
        self._local_keys = signing.parse_keys(local_conf.get("hmac_keys"))
        enabled = _bool(local_conf.get("enabled", local_conf.get("trace_wsgi")))
        self._off = enabled is False
        self._trust_unsigned = _bool(local_conf.get("trust_unsigned_traceparent"))
        age = local_conf.get("signature_max_age")
        self._max_age: int | None = int(age) if age not in (None, "") else None
        self._tracer = trace.get_tracer("os_trace_plugins.wsgi", __version__)
        self._key_cache: tuple[str, tuple[str, ...]] = ("", ())
        self._presampler = Presampler()

    @classmethod
    def factory(cls, global_conf: dict[str, Any] | None,
                **local_conf: Any) -> Callable[[WSGIApp], TracingMiddleware]:
        """The ``paste.filter_factory``: ``local_conf`` may set ``hmac_keys``,
        ``enabled``, ``trust_unsigned_traceparent``, ``signature_max_age``
        (OSProfiler's paste options keep working)."""
        def _filter(app: WSGIApp) -> TracingMiddleware:
            return cls(app, **local_conf)
        return _filter

    # -- configuration, read only for requests that carry trace headers -------
    def _profiler_group(self) -> Any:
        conf = self._conf
        if conf is None:
            from os_trace_plugins import _setup
            conf = _setup._state.get("conf")
        if conf is None:
            from oslo_config import cfg
            conf = cfg.CONF
        try:
            if opts.GROUP not in conf:  # a ConfigOpts is a mapping of its groups
                return None
            return conf[opts.GROUP]
        except Exception:  # not a ConfigOpts we understand
            return None

    def _settings(self) -> tuple[tuple[str, ...], int]:
        group = self._profiler_group()
        raw = str(getattr(group, "hmac_keys", "") or "") if group is not None else ""
        if raw != self._key_cache[0]:
            self._key_cache = (raw, signing.parse_keys(raw))
        keys = self._local_keys + tuple(
            k for k in self._key_cache[1] if k not in self._local_keys)
        max_age = self._max_age
        if max_age is None:
            max_age = int(getattr(group, "signature_max_age", 3600) or 0) \
                if group is not None else 3600
        return keys, max_age

    def _decide(self, environ: dict[str, Any]) -> trust.Decision:
        keys, max_age = self._settings()
        trust_unsigned = self._trust_unsigned
        if trust_unsigned is None:
            trust_unsigned = bool(SWITCHES.trust_unsigned_traceparent)
        return trust.decide(environ, keys, max_age, trust_unsigned,
                            bool(SWITCHES.accept_osprofiler_headers))

    # -- the request path ----------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any],
                 ) -> Iterable[bytes]:
        if self._off or not SWITCHES.trace_wsgi:
            return self.app(environ, start_response)
        try:
            started = self._start(environ)
        except Exception as exc:
            _safety.report_failure("wsgi middleware (start)", exc)
            return self.app(environ, start_response)
        if started is None:  # no tracer provider installed: nothing to do
            return self.app(environ, start_response)
        span, token = started
        if not span.is_recording():
            try:
                return self.app(environ, start_response)
            finally:
                context.detach(token)
        return self._recorded(span, token, environ, start_response)

    def _start(self, environ: dict[str, Any]) -> tuple[trace.Span, Token[Context]] | None:
        if self._presampler.untraced():
            return None
        if "HTTP_TRACEPARENT" in environ or "HTTP_X_TRACE_INFO" in environ:
            decision: trust.Decision | None = self._decide(environ)
        else:
            decision = None
        name = environ.get("REQUEST_METHOD")
        if name not in KNOWN_METHODS:  # bounded span names (semconv: "HTTP")
            name = "HTTP"
        parent = _EMPTY
        if decision is not None and decision.context is not None:
            parent = decision.context  # carries the trusted baggage too
            span = self._tracer.start_span(name, parent, SpanKind.SERVER)
            if decision.root:
                make_root(span)
        else:
            links = decision.links if decision is not None else None
            span = start_root(self._tracer, self._presampler, name, SpanKind.SERVER,
                              _EMPTY, links)
        if decision is not None and span.is_recording():
            span.set_attribute("os_trace.trust", decision.trust)
        return span, context.attach(trace.set_span_in_context(span, parent))

    def _recorded(self, span: trace.Span, token: Token[Context], environ: dict[str, Any],
                  start_response: Callable[..., Any]) -> Iterable[bytes]:
        state: dict[str, Any] = {}
        request_context = context.get_current()
        _safety.safe_call("wsgi middleware (attributes)", request_attributes,
                          span, environ)
        header = _safety.safe_call("wsgi middleware (traceparent)", _traceparent, span)

        def _start_response(status: str, headers: list[tuple[str, str]],
                            exc_info: Any = None) -> Any:
            state["status"] = status
            if header:
                headers = [h for h in headers if h[0].lower() != "traceparent"]
                headers.append(("traceparent", header))
            return start_response(status, headers, exc_info)

        try:
            result = self.app(environ, _start_response)
        except BaseException as exc:
            _safety.safe_call("wsgi middleware (error)", _finish, span, environ, state,
                              exc)
            context.detach(token)
            raise
        context.detach(token)
        if isinstance(result, (list, tuple)):
            _safety.safe_call("wsgi middleware (finish)", _finish, span, environ, state,
                              None)
            return result
        return _ClosingIterable(result, span, environ, state, request_context)


def _traceparent(span: trace.Span) -> str:
    sc = span.get_span_context()
    return f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"


def _finish(span: trace.Span, environ: dict[str, Any], state: dict[str, Any],
            exc: BaseException | None) -> None:
    """Status, route and ids known only once the inner apps ran; end the span."""
    try:
        finish_attributes(span, environ)
        status = state.get("status")
        code = _status_code(status)
        if code:
            span.set_attribute("http.response.status_code", code)
            if code >= 500:
                span.set_attribute("error.type", str(code))
                span.set_status(Status(StatusCode.ERROR, str(status)))
        if exc is not None:
            record_error(span, exc)
    finally:
        span.end()


def _status_code(status: Any) -> int:
    if not status:
        return 0
    head = str(status)[:3]
    return int(head) if head.isdigit() else 0


class _ClosingIterable:
    """The app's streamed response; the span ends when the server closes it.

    Each chunk is produced with the request's context attached (and detached
    within the same call), so work done while streaming (a generator body
    querying the database) still lands in the request's trace.
    """

    def __init__(self, result: Iterable[bytes], span: trace.Span,
                 environ: dict[str, Any], state: dict[str, Any], ctx: Context) -> None:
        self._result = result
        self._iter: Iterator[bytes] | None = None
        self._span = span
        self._environ = environ
        self._state = state
        self._ctx = ctx
        self._error: BaseException | None = None

    def __iter__(self) -> _ClosingIterable:
        return self

    def __next__(self) -> bytes:
        token = context.attach(self._ctx)
        try:
            if self._iter is None:
                self._iter = iter(self._result)
            return next(self._iter)
        except StopIteration:
            raise
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            context.detach(token)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()  # the host's own call: its exceptions propagate
        finally:
            _safety.safe_call("wsgi middleware (finish)", _finish, self._span,
                              self._environ, self._state, self._error)
