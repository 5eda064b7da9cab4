"""oslo.messaging hooks: one trace across services that talk over the bus.

Public:

- :class:`RPCInstrumentor` -- the ``opentelemetry_instrumentor`` entry point
  (calls, casts, fanout; ``setup()`` loads the same hook as ``rpc``);
- :mod:`os_trace_plugins.rpc.handoff` -- keep the trace on work an endpoint
  hands to a thread pool or a greenthread (``handoff.wrap``, ``spawn``,
  ``ContextExecutor``).

The caller side (``_client``), the server side (``_server``), notifications
(``_notify``) and the carrier in the serialized request context (``_carrier``)
are internal.  Importing this package imports nothing from oslo.messaging; the
hooks do so when instrumented.  See docs/rpc.md.
"""

from os_trace_plugins.rpc._hook import RPCInstrumentor

__all__ = ["RPCInstrumentor"]
