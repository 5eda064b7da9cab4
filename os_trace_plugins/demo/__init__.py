"""The multi-service sample the README runs: ``os-trace demo``.

An OpenStack-shaped system (an API over WSGI, a conductor reached by RPC
that uses SQLAlchemy and a vendor driver, a worker reached by a cast, a
notification listener) traced by nothing but ``os_trace_plugins.setup()``
and the hooks it loads.  See :mod:`os_trace_plugins.demo._runner`.  Internal:
``os-trace demo`` is its interface.
"""

__all__: list[str] = []
