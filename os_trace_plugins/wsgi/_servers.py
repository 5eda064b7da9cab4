"""The ``wsgi_servers`` hook: the API edge without paste, and pecan's routes.

Services that build their WSGI app in code (pecan, Flask) and never load an
``api-paste.ini`` get their SERVER span here: the application a service hands
to its WSGI server is wrapped in :class:`~os_trace_plugins.wsgi.TracingMiddleware`
as the server receives it, with no change in the service.

==================================  =========================================
server                              what is patched (post-import, via Hook.patch)
==================================  =========================================
oslo.service ``wsgi.Server``        nothing of its own: it serves through
                                    ``eventlet.wsgi.server``
``eventlet.wsgi.server``            the module function (``site`` argument)
``cheroot.wsgi.Server``             ``__init__`` (``wsgi_app`` argument)
``wsgiref.simple_server``           ``WSGIServer.set_app`` (``make_server`` uses it)
uwsgi, mod_wsgi                     nothing can be: the server calls the module's
                                    ``application`` itself; use
                                    :func:`wrap_application` (docs/wsgi-servers.md)
==================================  =========================================

Wrapped once: an application that already is a ``TracingMiddleware`` is
handed on as it is; a ``TracingMiddleware`` deeper in the app (a paste
filter) and ours outside it make one SERVER span, because the middleware
marks the request's environ (``os_trace_plugins.edge``) and the inner one
then passes straight through.

The hook also patches ``pecan.core.PecanBase.find_controller``: once pecan
has routed, the template of the route (:func:`.attributes.pecan_template`)
goes into ``environ["os_trace.route"]``, so the span reads
``GET /v1/nodes/{node_ident}``; and ``flask.app.Flask.dispatch_request``,
where Flask's matched ``url_rule`` is known (Flask empties
``environ["werkzeug.request"]`` when the request ends, before our span does);
and ``routes.mapper.Mapper.match``: apps that match with python-routes
themselves instead of through ``RoutesMiddleware`` (placement's handler calls
``mapper.match(environ=environ)``) never put ``routes.route`` in the environ,
so a ``match`` given an environ is answered through the public
``Mapper.routematch`` (the same ``_match``, the same result dict) and the
matched route's template is noted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from os_trace_plugins import _safety
from os_trace_plugins._hooks import Hook, HookInstrumentor, shared
from os_trace_plugins.wsgi._attributes import (
    ROUTE_ENVIRON_KEY,
    normalize_route,
    pecan_template,
)
from os_trace_plugins.wsgi._middleware import TracingMiddleware

__all__ = ["WSGIServersHook", "WSGIServersInstrumentor", "wrap_application"]


def wrap_application(app: Any, conf: Any = None) -> Any:
    """``app`` wrapped in :class:`TracingMiddleware`, unless it already is.

    The one-line change for servers nothing can patch (uwsgi, mod_wsgi)::

        application = wrap_application(application)   # in the wsgi script
    """
    if app is None or isinstance(app, TracingMiddleware):
        return app
    if conf is None:
        conf = shared(WSGIServersHook).conf
    return TracingMiddleware(app, conf=conf)


def _wrap_arg(index: int, name: str) -> Callable[..., Any]:
    """Wrapper replacing the application argument (``args[index]`` or ``name``)."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        if len(args) > index:
            app = _safety.safe_call("wsgi servers (wrap)", wrap_application, args[index],
                                    default=args[index])
            args = args[:index] + (app,) + args[index + 1:]
        elif name in kwargs:
            app = _safety.safe_call("wsgi servers (wrap)", wrap_application, kwargs[name],
                                    default=kwargs[name])
            kwargs = {**kwargs, name: app}
        return wrapped(*args, **kwargs)

    return wrapper


def _record_pecan_route(state: Any) -> None:
    request = state.request
    path = request.pecan.get("routing_path") or request.path_info
    arguments = getattr(state, "arguments", None)
    args = list(getattr(arguments, "args", ()) or ()) + list(
        getattr(arguments, "varargs", ()) or ())
    request.environ[ROUTE_ENVIRON_KEY] = pecan_template(path, state.controller, args)


def _find_controller(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Any:
    result = wrapped(*args, **kwargs)
    state = args[0] if args else kwargs.get("state")
    if state is not None:
        _safety.safe_call("wsgi servers (pecan route)", _record_pecan_route, state)
    return result


def _record_flask_route(instance: Any) -> None:
    import sys

    request = sys.modules["flask"].request  # imported by the service: we are in its call
    rule = getattr(request.url_rule, "rule", None)
    if isinstance(rule, str) and rule:
        request.environ[ROUTE_ENVIRON_KEY] = normalize_route(rule, "werkzeug")


def _dispatch_request(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
    """``Flask.dispatch_request``: the URL is matched (Flask clears the request
    from the environ when the request ends, so the route is noted now)."""
    _safety.safe_call("wsgi servers (flask route)", _record_flask_route, instance)
    return wrapped(*args, **kwargs)


def _record_routes_route(environ: dict[str, Any], route: Any) -> None:
    path = getattr(route, "routepath", None)
    if isinstance(path, str) and path:
        environ[ROUTE_ENVIRON_KEY] = normalize_route(path, "routes")


def _routes_match(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
    """``Mapper.match(url=None, environ=None)``: same answer, route noted."""
    environ = kwargs.get("environ", args[1] if len(args) > 1 else None)
    if type(environ) is not dict or getattr(instance, "debug", True):
        return wrapped(*args, **kwargs)  # debug mode returns a triple: leave it alone
    found = instance.routematch(*args, **kwargs)
    if found is None:
        return None
    result, route = found
    _safety.safe_call("wsgi servers (routes route)", _record_routes_route, environ, route)
    return result


class WSGIServersHook(Hook):
    """Wrap the application handed to WSGI servers; name pecan's routes."""

    name: ClassVar[str] = "wsgi_servers"
    option: ClassVar[str | None] = "trace_wsgi"

    def _instrument(self) -> None:
        self.patch("eventlet.wsgi", "server", _wrap_arg(1, "site"))
        self.patch("cheroot.wsgi", "Server.__init__", _wrap_arg(1, "wsgi_app"))
        self.patch("wsgiref.simple_server", "WSGIServer.set_app",
                   _wrap_arg(0, "application"))
        self.patch("pecan.core", "PecanBase.find_controller", _find_controller)
        self.patch("flask.app", "Flask.dispatch_request", _dispatch_request)
        self.patch("routes.mapper", "Mapper.match", _routes_match)


class WSGIServersInstrumentor(HookInstrumentor):
    """``opentelemetry-instrument`` entry point for the WSGI servers hook."""

    hook_class = WSGIServersHook
    dependencies = ()
