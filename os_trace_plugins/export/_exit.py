"""The ``worker_exit`` hook: an oslo.service worker flushes its spans before ``os._exit``.

A worker that oslo.service forks leaves through ``os._exit``, where neither
atexit handlers nor the SDK's own shutdown run, so the spans of its last
requests (up to a whole batch) would be lost.  Two points in
oslo.service's installed source sit right before that exit, once the
service has stopped (its in-flight requests finished, the last span ended):

=====================================================  ============================
where                                                  path to ``os._exit``
=====================================================  ============================
``backend._threading.service.ServiceWrapper.terminate``  cotyledon's worker, on
                                                       SIGTERM: ``terminate()`` then
                                                       ``sys.exit(0)`` -> ``os._exit``
``backend._eventlet.service.ProcessLauncher.``         the forked child:
``_child_wait_for_exit_or_signal``                     ``launcher.stop()`` on
                                                       SIGTERM, then ``os._exit``
=====================================================  ============================

After each returns (or raises), :func:`os_trace_plugins._setup.flush_before_exit`
exports what is queued within ``[profiler] shutdown_timeout``, so a dead
collector delays the worker's exit by at most that.  It is a flush, not a
shutdown: an eventlet child that caught SIGHUP restarts its service and keeps
tracing.  The threading backend's ``ServiceLauncher`` runs its service in such
a worker too; the eventlet one runs it in the main process, which exits
normally and flushes at interpreter exit.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from os_trace_plugins._hooks import Hook

__all__ = ["WorkerExitHook", "PATCHES"]

#: (module, attribute path): the points patched when the service imports them
PATCHES: tuple[tuple[str, str], ...] = (
    ("oslo_service.backend._threading.service", "ServiceWrapper.terminate"),
    ("oslo_service.backend._eventlet.service",
     "ProcessLauncher._child_wait_for_exit_or_signal"),
)


def _then_flush(wrapped: Any, instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
    try:
        return wrapped(*args, **kwargs)
    finally:
        from os_trace_plugins import _setup

        _setup.flush_before_exit()  # guarded, bounded, never raises


class WorkerExitHook(Hook):
    """Flush before oslo.service's workers leave through ``os._exit``."""

    name: ClassVar[str] = "worker_exit"
    option: ClassVar[str | None] = None

    def _instrument(self) -> None:
        for module, path in PATCHES:
            self.on_import(module, functools.partial(self._patch_present, module, path))

    def _patch_present(self, module: str, path: str, mod: Any) -> None:
        owner: Any = mod
        for part in path.split("."):
            owner = getattr(owner, part, None)
            if owner is None:  # another oslo.service layout: nothing to patch
                return
        self.patch(module, path, _then_flush)
