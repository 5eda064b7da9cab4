"""Shared bits of the SQL tests: a base that also detaches the SQL listeners."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan
from sqlalchemy.engine.default import DefaultDialect

from os_trace_plugins import _flagged
from os_trace_plugins._hooks import shared
from os_trace_plugins.db import _toggle as toggle
from os_trace_plugins.db._hook import SQLAlchemyHook
from tests.base import TestCase

__all__ = ["SQLTestCase", "attached", "flagged_request"]


def attached() -> bool:
    """Whether statements run through our wrapper right now.

    Checked on the class itself: ``DefaultDialect.do_execute`` is our wrapt
    wrapper exactly while attached (off: SQLAlchemy's own function).
    """
    wrapped = isinstance(DefaultDialect.__dict__["do_execute"], wrapt.FunctionWrapper)
    assert wrapped == toggle.TOGGLE.attached, "toggle state and class disagree"
    return wrapped


@contextmanager
def flagged_request(ctx: Any) -> Iterator[None]:
    """Run the block as our WSGI/RPC hooks run a request: attach + _flagged.enter."""
    token = otel_context.attach(ctx)
    flagged = _flagged.enter(ctx)
    try:
        yield
    finally:
        _flagged.leave(flagged)
        otel_context.detach(token)


def _reset_sql() -> None:
    shared(SQLAlchemyHook).uninstrument()
    toggle.reset()
    _flagged.reset()


class SQLTestCase(TestCase):
    """TestCase that installs the SQL hook on the test provider and resets it."""

    def setUp(self) -> None:
        super().setUp()
        _reset_sql()
        self.addCleanup(_reset_sql)

    def install(self, **switches: Any) -> None:
        self.bind(**switches)
        shared(SQLAlchemyHook).instrument(self.conf, self.provider)

    def sql_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans()
                if s.attributes and "db.system.name" in s.attributes]
