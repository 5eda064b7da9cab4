"""oslo.messaging hooks: one trace across services that talk over the bus.

* :mod:`~os_trace_plugins.rpc.hook` -- ``RPCHook`` (calls, casts, fanout).
* :mod:`~os_trace_plugins.rpc.notify_hook` -- ``NotificationHook``.
* :mod:`~os_trace_plugins.rpc.carrier` -- the W3C/OSProfiler carrier in the
  serialized request-context dict.
* :mod:`~os_trace_plugins.rpc.handoff` -- keep the trace on work an endpoint
  hands to a thread pool or a greenthread.

Importing this package imports nothing from oslo.messaging; the hooks do so
when instrumented.  See docs/rpc.md.
"""

__all__: list[str] = []
