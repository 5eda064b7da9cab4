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

Never two SERVER spans for one request: the first middleware that handles a
request sets ``environ["os_trace_plugins.edge"]``, and any further instance
(a paste filter inside an app that was also wrapped at the WSGI server)
calls straight through.

Which inbound headers are trusted is decided in :mod:`._trust`; the span is
started through the public ``Tracer.start_span`` and the provider's sampler
decides.  A request signed as a *root* keeps the signer's trace id through
the provider's id generator (:mod:`os_trace_plugins.export._ids`, installed by
``setup()``); with a provider the host installed, it becomes a new root with
a span link to the signed parent.

The request's context stays attached while the inner apps run and while a
streamed body is produced (recorded or not), so SQL and RPC work done while
streaming stays in the trace; :func:`os_trace_plugins._flagged.enter` /
``leave`` bracket the request (until a streamed body is closed).  The
resting cost is one attribute check (``[profiler] trace_wsgi`` off); see
``docs/bench/wsgi.md`` for the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextvars import Token
from typing import Any

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from os_trace_plugins import _flagged, _safety, opts
from os_trace_plugins._errors import record_error
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins._version import __version__
from os_trace_plugins.export import _ids as ids
from os_trace_plugins.export._propagation import format_traceparent
from os_trace_plugins.export._trust import TRUST_ATTRIBUTE
from os_trace_plugins.wsgi import _signing as signing
from os_trace_plugins.wsgi import _trust as trust
from os_trace_plugins.wsgi._attributes import (
    KNOWN_METHODS,
    finish_attributes,
    request_attributes,
    start_attributes,
)

__all__ = ["TracingMiddleware", "EDGE_ENVIRON_KEY"]

#: set in the environ by the middleware that handles a request
EDGE_ENVIRON_KEY = "os_trace_plugins.edge"

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
        if self._off or not SWITCHES.trace_wsgi or EDGE_ENVIRON_KEY in environ:
            return self.app(environ, start_response)
        environ[EDGE_ENVIRON_KEY] = True
        try:
            span, ctx = self._start(environ)
            token = context.attach(ctx)
        except Exception as exc:
            _safety.report_failure("wsgi middleware (start)", exc)
            return self.app(environ, start_response)
        flagged = _flagged.enter(ctx)
        if span.is_recording():
            return self._recorded(span, token, ctx, flagged, environ, start_response)
        try:
            result = self.app(environ, start_response)
        except BaseException:
            context.detach(token)
            _flagged.leave(flagged)
            raise
        context.detach(token)
        if isinstance(result, (list, tuple)):
            _flagged.leave(flagged)
            return result
        return _ClosingIterable(result, ctx, lambda error: _flagged.leave(flagged))

    def _start(self, environ: dict[str, Any]) -> tuple[trace.Span, Context]:
        """The SERVER span and the context to run the request in."""
        name = environ.get("REQUEST_METHOD")
        if name not in KNOWN_METHODS:  # bounded span names (semconv: "HTTP")
            name = "HTTP"
        attributes = start_attributes(environ)  # a per-operation sampler keys on them
        if "HTTP_TRACEPARENT" not in environ and "HTTP_X_TRACE_INFO" not in environ:
            span = self._tracer.start_span(name, _EMPTY, SpanKind.SERVER, attributes)
            return span, trace.set_span_in_context(span, _EMPTY)
        decision = self._decide(environ)
        parent = decision.context if decision.context is not None else _EMPTY
        attributes[TRUST_ATTRIBUTE] = decision.trust  # our sampler keeps signed roots
        links = decision.links
        if decision.root:
            signer = trace.get_current_span(parent).get_span_context()
            parent = trace.set_span_in_context(trace.INVALID_SPAN, parent)  # baggage kept
            if ids.honoured(trace.get_tracer_provider()):
                with ids.requested(signer.trace_id):
                    span = self._tracer.start_span(name, parent, SpanKind.SERVER,
                                                   attributes, links)
                return span, trace.set_span_in_context(span, parent)
            # a host's provider: its id generator picks the trace id
            links = [trace.Link(signer, {"os_trace.link": "signed_parent"})]
        span = self._tracer.start_span(name, parent, SpanKind.SERVER, attributes, links)
        return span, trace.set_span_in_context(span, parent)

    def _recorded(self, span: trace.Span, token: Token[Context], ctx: Context,
                  flagged: bool, environ: dict[str, Any],
                  start_response: Callable[..., Any]) -> Iterable[bytes]:
        state: dict[str, Any] = {}
        _safety.safe_call("wsgi middleware (attributes)", request_attributes,
                          span, environ)
        header = _safety.safe_call("wsgi middleware (traceparent)", format_traceparent,
                                   span.get_span_context())

        def _start_response(status: str, headers: list[tuple[str, str]],
                            exc_info: Any = None) -> Any:
            state["status"] = status
            if header:
                headers = [h for h in headers if h[0].lower() != "traceparent"]
                headers.append(("traceparent", header))
            return start_response(status, headers, exc_info)

        def finish(exc: BaseException | None) -> None:
            try:
                _safety.safe_call("wsgi middleware (finish)", _finish, span, environ,
                                  state, exc)
            finally:
                _flagged.leave(flagged)

        try:
            result = self.app(environ, _start_response)
        except BaseException as exc:
            context.detach(token)
            finish(exc)
            raise
        context.detach(token)
        if isinstance(result, (list, tuple)):
            finish(None)
            return result
        return _ClosingIterable(result, ctx, finish)


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
    """The app's streamed response, produced in the request's context.

    Each chunk is produced with the request's context attached (and detached
    within the same call), so work done while streaming (a generator body
    querying the database) still lands in the request's trace, recorded or
    not.  ``finish(error)`` runs once, when the server closes the iterable.
    """

    def __init__(self, result: Iterable[bytes], ctx: Context,
                 finish: Callable[[BaseException | None], None]) -> None:
        self._result = result
        self._iter: Iterator[bytes] | None = None
        self._ctx = ctx
        self._finish: Callable[[BaseException | None], None] | None = finish
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
            finish, self._finish = self._finish, None
            if finish is not None:
                _safety.safe_call("wsgi middleware (close)", finish, self._error)
