"""The API edge: WSGI middleware, signed trace headers, outgoing HTTP.

- :class:`TracingMiddleware`: paste filter / WSGI wrapper, one SERVER span per
  request, trusting only signed inbound trace headers by default.
- :func:`wrap_application`: the one-line change for servers nothing can patch
  (uwsgi, mod_wsgi): ``application = wrap_application(application)``.
- :func:`signed_headers`: headers that make another API trust the current trace.
- :func:`keystoneauth_headers`: the same for code that sets its own headers
  (``session.get(url, headers=keystoneauth_headers())``).
- :class:`WSGIServersInstrumentor`: the ``opentelemetry_instrumentor`` entry
  point that wraps eventlet.wsgi, cheroot and wsgiref applications.

Importing this package imports neither webob nor requests.  See docs/wsgi.md
and docs/wsgi-servers.md.
"""

from os_trace_plugins.wsgi._middleware import TracingMiddleware
from os_trace_plugins.wsgi._outgoing import keystoneauth_headers
from os_trace_plugins.wsgi._servers import WSGIServersInstrumentor, wrap_application
from os_trace_plugins.wsgi._signing import signed_headers

__all__ = [
    "TracingMiddleware",
    "WSGIServersInstrumentor",
    "keystoneauth_headers",
    "signed_headers",
    "wrap_application",
]
