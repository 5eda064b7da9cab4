"""The public API for writing a hook: what a third-party package may rely on.

A vendor ships its own hook in its own distribution, by entry point alone::

    # setup.cfg of the vendor package
    [options.entry_points]
    os_trace_plugins.hooks =
        mybackend = my_backend.tracing:MyBackendHook

    from os_trace_plugins.hooks import SWITCHES, Hook, safe_call

    class MyBackendHook(Hook):
        name = "mybackend"
        option = "trace_drivers"   # a mutable switch: loaded always, read per call

        def _instrument(self):
            # wrapt's wrapper signature; applied when the service imports the module
            self.patch("my_backend.client", "Client.request", self._wrap)

        def _wrap(self, wrapped, instance, args, kwargs):
            if not SWITCHES.trace_drivers:
                return wrapped(*args, **kwargs)
            span = safe_call("mybackend hook", self.tracer.start_span, "mybackend request")
            ...

Promised here, and kept stable across minor versions:

* :class:`Hook`: ``name``, ``option``, ``instrument``/``uninstrument``
  (idempotent, symmetric), ``tracer``, ``conf``, :meth:`Hook.patch` (the one
  patching mechanism: wrapt behind a post-import hook; removal takes only our
  wrapper away) and :meth:`Hook.on_import`;
* :data:`SWITCHES`: the live value of every mutable ``[profiler]`` option as a
  plain attribute (``SWITCHES.trace_rpc``), ``SWITCHES.subscribe(name, fn)``;
* :func:`safe_call` and :func:`report_failure`: the guard every hook body
  runs under (log once, never raise);
* :func:`record_error`: the one error recorder (status, ``error.type``,
  exception event).

Everything else under ``os_trace_plugins._*`` is internal.
"""

from os_trace_plugins._errors import record_error
from os_trace_plugins._hooks import Hook
from os_trace_plugins._safety import report_failure, safe_call
from os_trace_plugins._switches import SWITCHES, Switches

__all__ = ["Hook", "SWITCHES", "Switches", "record_error", "report_failure", "safe_call"]
