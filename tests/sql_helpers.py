"""Shared bits of the SQL tests: a base that also detaches the SQL listeners."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from sqlalchemy import event
from sqlalchemy.engine import Dialect, Engine

from os_trace_plugins.db import toggle
from tests.base import TestCase

__all__ = ["SQLTestCase", "attached"]


def attached() -> bool:
    """Whether SQLAlchemy dispatches to our listeners right now.

    Off means SQLAlchemy's own class-level gate is closed (plain engines call
    no listener at all) and nothing else of ours is registered... or, once
    uninstalled, that our functions are gone from the Engine class.
    """
    listeners = toggle.TOGGLE.listeners
    if listeners is None:
        return False
    registered = all(event.contains(Engine, name, getattr(listeners, name))
                     for name, _ in toggle._EVENTS)
    gate = bool(Engine._has_events) and bool(Dialect._has_events)
    return registered and gate and toggle.TOGGLE.attached


class SQLTestCase(TestCase):
    """TestCase that installs the SQL toggle on the test provider and resets it."""

    def setUp(self) -> None:
        super().setUp()
        self.addCleanup(toggle.reset)

    def install(self, **switches: Any) -> None:
        self.bind(**switches)
        toggle.TOGGLE.install(self.provider.get_tracer("os_trace_plugins.sqlalchemy"))

    def sql_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans()
                if s.attributes and "db.system.name" in s.attributes]
