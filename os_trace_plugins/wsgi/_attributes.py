"""HTTP semantic-convention and ``openstack.*`` attributes of the SERVER span.

Computed only for recording spans. The request half is known at the start;
the route and the OpenStack ids only once the inner apps ran (oslo.middleware's
``RequestId`` sets ``openstack.request_id``; keystonemiddleware sets the
identity headers; the service builds its oslo.context and stores it in the
environ).

Route templates (``http.route``, and the span name ``METHOD template``) come
from whichever router matched, always written ``{name}``:

- ``environ["os_trace.route"]``: set by the application itself, or by the
  ``wsgi_servers`` hook for pecan (:func:`pecan_template`, from the
  controller pecan routed to and the path segments it took as arguments)
  and for Flask (its ``url_rule``, noted while the request runs);
- python-routes: ``environ["routes.route"].routepath`` (``:id``, ``:(id)``,
  ``{id:\\d+}`` and ``*path`` rewritten ``{id}`` / ``{path}``);
- a plain Werkzeug app: ``environ["werkzeug.request"].url_rule.rule``
  (``<int:id>`` -> ``{id}``).

The template is prefixed with ``SCRIPT_NAME`` (where the app is mounted:
``/v2.1`` under nova's urlmap).  No router told us: the span keeps the method
alone (semantic conventions: no path in the name, bounded cardinality).

Whatever a client sent is cut before it becomes an attribute
(:mod:`os_trace_plugins._bounds`): ``url.path`` to 2048 characters, the
address, the user agent and the ids to 256, so a 1 MB header costs the span
nothing.  The query string is never recorded (it carries temp URL
signatures and tokens).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from opentelemetry import trace

from os_trace_plugins._bounds import MAX_PATH_LENGTH, cut

__all__ = ["start_attributes", "request_attributes", "finish_attributes", "CONTEXT_ENVIRON_KEYS",
           "KNOWN_METHODS", "route_of", "openstack_ids", "normalize_route",
           "pecan_template", "ROUTE_ENVIRON_KEY"]

#: where an application (or our pecan patch) states the matched route template
ROUTE_ENVIRON_KEY = "os_trace.route"

#: Methods named as such; any other is ``_OTHER`` (semantic conventions).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
                           "OPTIONS", "TRACE", "PATCH"})

#: Where services keep their oslo.context RequestContext in the environ.
CONTEXT_ENVIRON_KEYS = ("openstack.context", "oslo.context", "nova.context",
                        "cinder.context", "glance.context", "neutron.context",
                        "manila.context", "placement.context", "heat.context",
                        "ironic.context", "octavia.context")

_IDS = ("request_id", "global_request_id", "project_id", "user_id")


def _host_port(environ: dict[str, Any]) -> tuple[str, int | None]:
    host = environ.get("HTTP_HOST") or ""
    if host:
        if host.startswith("["):  # [v6]:port
            addr, _, rest = host[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else ""
        else:
            addr, _, port_text = host.rpartition(":") if ":" in host else (host, "", "")
        if port_text.isdigit():
            return addr, int(port_text)
        return addr, None
    port = str(environ.get("SERVER_PORT") or "")
    return str(environ.get("SERVER_NAME") or ""), int(port) if port.isdigit() else None


def start_attributes(environ: dict[str, Any]) -> dict[str, Any]:
    """The semantic conventions' sampling-relevant attributes (method, path),
    given to ``start_span`` so a sampler can key on "METHOD path" before the
    route, and so the span's final name, is known."""
    path = (environ.get("SCRIPT_NAME") or "") + (environ.get("PATH_INFO") or "")
    method = environ.get("REQUEST_METHOD") or ""
    return {"http.request.method": method if method in KNOWN_METHODS else "_OTHER",
            "url.path": cut(path, MAX_PATH_LENGTH) if path else "/"}


def request_attributes(span: trace.Span, environ: dict[str, Any]) -> None:
    """Attributes known when the request arrives, beyond :func:`start_attributes`
    (which the span started with)."""
    method = environ.get("REQUEST_METHOD") or ""
    attrs: dict[str, Any] = {"url.scheme": environ.get("wsgi.url_scheme") or "http"}
    if method not in KNOWN_METHODS:
        attrs["http.request.method_original"] = method[:64]
    host, port = _host_port(environ)
    if host:
        attrs["server.address"] = cut(host)
    if port:
        attrs["server.port"] = port
    ua = environ.get("HTTP_USER_AGENT")
    if ua:
        attrs["user_agent.original"] = cut(ua)
    remote = environ.get("REMOTE_ADDR")
    if remote:
        attrs["client.address"] = cut(str(remote))
    proto = str(environ.get("SERVER_PROTOCOL") or "")
    if proto.startswith("HTTP/"):
        attrs["network.protocol.version"] = cut(proto[5:], 16)
    span.set_attributes(attrs)


_ROUTES_VARS = re.compile(r"\{([A-Za-z_][\w]*)(?::[^{}]*(?:\{[^{}]*\}[^{}]*)*)?\}"
                          r"|:\(([A-Za-z_]\w*)\)|:([A-Za-z_]\w*)|\*([A-Za-z_]\w*)")
_WERKZEUG_VARS = re.compile(r"<(?:[^<>:]+(?:\([^<>]*\))?:)?([A-Za-z_]\w*)>")
#: a path segment that is certainly an id (UUID, integer): never literal in a template
_ID_SEGMENT = re.compile(r"^(?:[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}"
                         r"|\d+)$")


def _routes_var(match: re.Match[str]) -> str:
    return "{" + next(g for g in match.groups() if g) + "}"


def normalize_route(template: str, kind: str) -> str:
    """A router's template written with ``{name}`` variables."""
    if kind == "werkzeug":
        return _WERKZEUG_VARS.sub(r"{\1}", template)
    return _ROUTES_VARS.sub(_routes_var, template)


def pecan_template(path: str, controller: Any, args: list[Any]) -> str:
    """The template of a pecan request: ``path`` with its argument segments named.

    Pecan hands path segments to the controller as positional arguments;
    each segment taken so (in order) becomes ``{parameter}``, other segments
    stay literal, except ids a ``_lookup`` consumed (UUIDs, integers), which
    become ``{id}`` so the name stays bounded.
    """
    try:
        params = [p.name for p in inspect.signature(controller).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    named = [(name, value) for name, value in zip(params, args, strict=False)
             if isinstance(value, str)]
    out = []
    i = 0
    for segment in path.split("/"):
        if i < len(named) and segment and segment == named[i][1]:
            out.append("{" + named[i][0] + "}")
            i += 1
        elif _ID_SEGMENT.match(segment):
            out.append("{id}")
        else:
            out.append(segment)
    return "/".join(out) or "/"


def _template(environ: dict[str, Any]) -> str | None:
    explicit = environ.get(ROUTE_ENVIRON_KEY)
    if isinstance(explicit, str) and explicit:
        return explicit
    route = environ.get("routes.route")  # python-routes (nova, cinder, neutron...)
    path = getattr(route, "routepath", None)
    if isinstance(path, str) and path:
        return normalize_route(path, "routes")
    req = environ.get("werkzeug.request")  # Flask (keystone, placement-like apps)
    rule = getattr(getattr(req, "url_rule", None), "rule", None)
    if isinstance(rule, str) and rule:
        return normalize_route(rule, "werkzeug")
    return None


def route_of(environ: dict[str, Any]) -> str | None:
    """The matched route template under the app's mount point, where a router told us."""
    template = _template(environ)
    if template is None:
        return None
    prefix = str(environ.get("SCRIPT_NAME") or "").rstrip("/")
    if prefix and not template.startswith(prefix + "/"):
        template = prefix + (template if template.startswith("/") else "/" + template)
    return template


def _context_object(environ: dict[str, Any]) -> Any:
    for key in CONTEXT_ENVIRON_KEYS:
        obj = environ.get(key)
        if obj is not None:
            return obj
    return None


def openstack_ids(environ: dict[str, Any]) -> dict[str, str]:
    """``openstack.*`` ids.

    Request ids from oslo.middleware's environ keys first (the id the user
    gets back in ``x-openstack-request-id``), then the oslo.context, then
    keystonemiddleware's confirmed identity headers.
    """
    ids: dict[str, str] = {}
    for name in ("request_id", "global_request_id"):
        value = environ.get(f"openstack.{name}")
        if isinstance(value, str) and value:
            ids[f"openstack.{name}"] = cut(value)
    ctx = _context_object(environ)
    if ctx is not None:
        for name in _IDS:
            value = getattr(ctx, name, None)
            if isinstance(value, str) and value:
                ids.setdefault(f"openstack.{name}", cut(value))
    if environ.get("HTTP_X_IDENTITY_STATUS") == "Confirmed":  # keystonemiddleware
        for name, key in (("project_id", "HTTP_X_PROJECT_ID"), ("user_id", "HTTP_X_USER_ID")):
            value = environ.get(key)
            if isinstance(value, str) and value:
                ids.setdefault(f"openstack.{name}", cut(value))
    return ids


def finish_attributes(span: trace.Span, environ: dict[str, Any]) -> None:
    """Route and OpenStack ids, known once the inner apps ran."""
    route = route_of(environ)
    if route:
        route = cut(route, MAX_PATH_LENGTH)
        span.set_attribute("http.route", route)
        method = environ.get("REQUEST_METHOD")
        span.update_name(f"{method if method in KNOWN_METHODS else 'HTTP'} {route}")
    ids = openstack_ids(environ)
    if ids:
        span.set_attributes(ids)
