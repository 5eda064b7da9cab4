"""The ``threads`` hook: the trace follows work handed to threads and greenthreads.

Loaded by ``setup()`` (entry point ``threads`` of ``os_trace_plugins.hooks``)
or by ``opentelemetry-instrument`` (``os_trace_plugins_threads``).  Every
patch goes through :meth:`Hook.patch`, applied when the *service* imports the
module: instrumenting imports neither futurist, eventlet nor oslo.service
(importing eventlet or oslo.service's backend selects the service's
concurrency model).  ``threading`` and ``concurrent.futures`` are stdlib.

=====================================  ============================================
where                                  what is patched
=====================================  ============================================
``concurrent.futures`` pools           ``ThreadPoolExecutor.submit`` (``map`` uses it)
futurist pools                         ``ThreadPoolExecutor.submit`` (and Dynamic...),
                                       ``GreenThreadPoolExecutor.submit``,
                                       ``DelayedExecutorMixinBase.submit_after``
``threading.Thread`` (Timer,           ``Thread.start``; oslo.service's threading
subclasses, oslo.service threads)      ``ThreadGroup.add_thread`` starts one per task
eventlet                               ``GreenThread.__init__`` / ``.main`` (spawn,
                                       spawn_after, GreenPool.spawn, oslo.service's
                                       eventlet thread groups), ``spawn_n`` under
                                       both its names
oslo.service looping calls             ``LoopingCallBase._start`` (tick rule, see
                                       :mod:`._looping`)
=====================================  ============================================

A peer doing the same (opentelemetry-instrumentation-threading, -oslo-service)
may be instrumented beside it: each layer attaches the same captured context
around the same call, which nests correctly (tests/functional/test_threads_peers.py).
"""

from __future__ import annotations

import functools
import logging
from typing import Any, ClassVar

from os_trace_plugins._hooks import Hook, HookInstrumentor
from os_trace_plugins._patching import Wrapper
from os_trace_plugins.threads import _looping as looping
from os_trace_plugins.threads import _wrappers as wrappers

__all__ = ["ThreadsHook", "ThreadsInstrumentor", "PATCHES"]

LOG = logging.getLogger(__name__)

_submit0 = wrappers.submit_wrapper(0)
_submit1 = wrappers.submit_wrapper(1)

#: (module, attribute path, wrapper): everything the hook patches
PATCHES: tuple[tuple[str, str, Wrapper], ...] = (
    ("concurrent.futures.thread", "ThreadPoolExecutor.submit", _submit0),
    ("futurist", "ThreadPoolExecutor.submit", _submit0),
    ("futurist", "GreenThreadPoolExecutor.submit", _submit0),
    ("futurist", "DelayedExecutorMixinBase.submit_after", _submit1),
    ("threading", "Thread.start", wrappers.thread_start),
    ("eventlet.greenthread", "GreenThread.__init__", wrappers.greenthread_init),
    ("eventlet.greenthread", "GreenThread.main", wrappers.greenthread_main),
    ("eventlet.greenthread", "spawn_n", wrappers.spawn_n_wrapper),
    ("eventlet", "spawn_n", wrappers.spawn_n_wrapper),
    ("oslo_service.backend._common.loopingcall", "LoopingCallBase._start",
     looping.start_wrapper),
)


class ThreadsHook(Hook):
    """Carry the OpenTelemetry context into executors, threads and greenthreads."""

    name: ClassVar[str] = "threads"
    option: ClassVar[str | None] = None

    def _instrument(self) -> None:
        for module, path, wrapper in PATCHES:
            self.on_import(module, functools.partial(self._patch_present, module, path,
                                                     wrapper))

    def _patch_present(self, module: str, path: str, wrapper: Wrapper, mod: Any) -> None:
        """Patch ``path`` once ``module`` is imported, if this version has it
        (``submit_after`` is futurist 3.2+, the backends oslo.service 4.1+)."""
        owner: Any = mod
        for part in path.split("."):
            owner = getattr(owner, part, None)
            if owner is None:
                LOG.debug("os_trace_plugins: %s has no %s; not patched", module, path)
                return
        self.patch(module, path, wrapper)


class ThreadsInstrumentor(HookInstrumentor):
    """``opentelemetry-instrument`` entry point for the threads hook."""

    hook_class = ThreadsHook
    dependencies = ()
