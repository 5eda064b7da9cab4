"""The multi-service sample the README runs: ``os-trace demo``.

An OpenStack-shaped system (an API over WSGI, a conductor reached by RPC
that uses SQLAlchemy and a vendor driver, a worker reached by a cast, a
notification listener) traced by nothing but ``os_trace_plugins.setup()``
and the hooks it loads.  See :mod:`os_trace_plugins.demo.runner`.
"""

from __future__ import annotations

__all__ = ["run_demo", "DemoOptions", "DemoResult", "DemoError"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from os_trace_plugins.demo import runner
        return getattr(runner, name)
    raise AttributeError(name)
