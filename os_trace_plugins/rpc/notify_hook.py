"""The ``notifications`` hook: oslo.messaging notifier sends and listeners.

Loaded through the ``os_trace_plugins.hooks`` entry point ``notifications``.
Patches ``Transport._send_notification``, ``NotificationDispatcher.dispatch``
and ``BatchNotificationDispatcher.dispatch`` (see
:mod:`os_trace_plugins.rpc.notify`); follows ``[profiler]
trace_notifications`` live.
"""

from __future__ import annotations

from typing import ClassVar

from os_trace_plugins._hooks import Hook
from os_trace_plugins.rpc import notify
from os_trace_plugins.rpc._patch import Patch
from os_trace_plugins.rpc.hook import apply_all

__all__ = ["NotificationHook"]


class NotificationHook(Hook):
    """Producer and consumer side of oslo.messaging notifications."""

    name: ClassVar[str] = "notifications"
    option: ClassVar[str | None] = "trace_notifications"
    requires: ClassVar[tuple[str, ...]] = ("oslo_messaging",)

    def __init__(self) -> None:
        super().__init__()
        self._patches: list[Patch] = []

    def _instrument(self) -> None:
        from oslo_messaging import transport
        from oslo_messaging.notify import dispatcher

        patches = [
            Patch(transport.Transport, "_send_notification",
                  notify.make_send_notification(self)),
            Patch(dispatcher.NotificationDispatcher, "dispatch", notify.make_dispatch(self)),
            Patch(dispatcher.BatchNotificationDispatcher, "dispatch",
                  notify.make_batch_dispatch(self)),
        ]
        apply_all(patches)
        self._patches = patches

    def _uninstrument(self) -> None:
        patches, self._patches = self._patches, []
        for patch in reversed(patches):
            patch.remove()
