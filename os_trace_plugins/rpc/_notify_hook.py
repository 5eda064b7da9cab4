"""The ``notifications`` hook: oslo.messaging notifier sends and listeners.

Loaded through the ``os_trace_plugins.hooks`` entry point ``notifications``.
Wraps ``Transport._send_notification``, ``NotificationDispatcher.dispatch``
and ``BatchNotificationDispatcher.dispatch`` (see
:mod:`os_trace_plugins.rpc._notify`) when the service imports them, importing
nothing itself; follows ``[profiler] trace_notifications`` live.
"""

from __future__ import annotations

from typing import ClassVar

from os_trace_plugins._hooks import Hook
from os_trace_plugins.rpc import _notify as notify

__all__ = ["NotificationHook"]


class NotificationHook(Hook):
    """Producer and consumer side of oslo.messaging notifications."""

    name: ClassVar[str] = "notifications"
    option: ClassVar[str | None] = "trace_notifications"

    def _instrument(self) -> None:
        self.patch("oslo_messaging.transport", "Transport._send_notification",
                   notify.make_send_notification(self))
        self.patch("oslo_messaging.notify.dispatcher", "NotificationDispatcher.dispatch",
                   notify.make_dispatch(self))
        self.patch("oslo_messaging.notify.dispatcher",
                   "BatchNotificationDispatcher.dispatch", notify.make_batch_dispatch(self))
