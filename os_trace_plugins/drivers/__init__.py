"""Vendor driver calls as spans: ``trace_driver``, ``trace`` and ``trace_cls``.

``trace_driver(driver, "compute")`` wraps a driver instance, class or module
(see :mod:`._wrapper`); ``trace``/``trace_cls`` are OSProfiler-style decorators
that hide arguments by default (see :mod:`._decorators`).  Drivers loaded
through stevedore or ``oslo_utils.importutils`` from the namespaces listed in
``[profiler] driver_namespaces`` are wrapped automatically by the ``drivers``
hook (:mod:`._hook`).  Usage for operators: docs/drivers.md.
"""

from os_trace_plugins.drivers._decorators import trace, trace_cls
from os_trace_plugins.drivers._wrapper import trace_driver

__all__ = ["trace_driver", "trace", "trace_cls"]
