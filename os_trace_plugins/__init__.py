"""os_trace_plugins: OpenTelemetry tracing for OpenStack services.

The whole public entry is here::

    import os_trace_plugins
    os_trace_plugins.setup(CONF, service="nova-conductor")   # at start
    os_trace_plugins.shutdown()                               # at stop

``setup()`` reads the ``[profiler]`` group (see :mod:`os_trace_plugins.opts`),
builds the exporter named by ``connection_string`` and loads every hook of the
``os_trace_plugins.hooks`` entry-point group.  Nothing happens at import time.
"""

from os_trace_plugins._setup import is_enabled, setup, shutdown
from os_trace_plugins._version import __version__

__all__ = ["__version__", "is_enabled", "setup", "shutdown"]
