"""The API edge: WSGI middleware, signed trace headers, outgoing HTTP.

- :class:`TracingMiddleware`: paste filter / WSGI wrapper, one SERVER span per
  request, trusting only signed inbound trace headers by default.
- :func:`signed_headers`: headers that make another API trust the current trace.
- :mod:`os_trace_plugins.wsgi.outgoing`: the ``requests`` hook
  (``[profiler] trace_requests``) and the keystoneauth helper.

See docs/wsgi.md.
"""

from os_trace_plugins.wsgi.middleware import TracingMiddleware
from os_trace_plugins.wsgi.signing import signed_headers

__all__ = ["TracingMiddleware", "signed_headers"]
