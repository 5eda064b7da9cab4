"""The store's schema, versioned through SQLite's ``PRAGMA user_version``.

Two tables:

* ``spans``: one row per span (ids as lowercase hex, times in Unix ns,
  attributes, events, links and resource as JSON text);
* ``traces``: one summary row per trace, upserted by the writer with every
  batch (first start, last end, span and error counts, root span), so that
  listing recent traces never scans spans; ``trace_services`` lists the
  services seen in each trace.

Every connection sets a busy timeout (concurrent writers wait for each other
instead of failing) and writers use WAL mode, so readers never block writers.
A store written by a newer os_trace_plugins (higher ``user_version``) is
refused with a clear :class:`StoreError` and never touched.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["SCHEMA_VERSION", "StoreError", "BUSY_TIMEOUT_MS", "ensure_schema",
           "configure_writer", "check_version"]

T = TypeVar("T")

#: Bump with a migration in :func:`ensure_schema` when the tables change.
SCHEMA_VERSION = 1

#: How long a connection waits for another process's write lock.
BUSY_TIMEOUT_MS = 10_000


class StoreError(Exception):
    """The store cannot be used; the message is one line for the operator."""


_DDL = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id       TEXT    NOT NULL,
    span_id        TEXT    NOT NULL,
    parent_id      TEXT,
    service        TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    start_ns       INTEGER NOT NULL,
    end_ns         INTEGER NOT NULL,
    status_code    TEXT    NOT NULL,
    status_message TEXT,
    attributes     TEXT    NOT NULL,
    events         TEXT    NOT NULL,
    links          TEXT    NOT NULL,
    resource       TEXT    NOT NULL,
    scope          TEXT,
    PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS traces (
    trace_id     TEXT    PRIMARY KEY,
    start_ns     INTEGER NOT NULL,
    end_ns       INTEGER NOT NULL,
    span_count   INTEGER NOT NULL,
    error_count  INTEGER NOT NULL,
    root_name    TEXT,
    root_service TEXT,
    first_name   TEXT    NOT NULL,
    first_service TEXT   NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_by_start ON traces (start_ns DESC);

CREATE TABLE IF NOT EXISTS trace_services (
    service  TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    PRIMARY KEY (service, trace_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trace_services_by_trace ON trace_services (trace_id);
"""


def configure_writer(conn: sqlite3.Connection) -> None:
    """Busy timeout, WAL, incremental auto-vacuum (on a new file).

    A store of a newer schema is refused before anything is changed in it.
    """
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    check_version(conn.execute("PRAGMA user_version").fetchone()[0])
    # auto_vacuum only takes effect before the first table is created
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    _retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
    conn.execute("PRAGMA synchronous = NORMAL")


def check_version(version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the store has schema version {version}, newer than this "
            f"os_trace_plugins understands ({SCHEMA_VERSION}); upgrade "
            f"os_trace_plugins to read it")


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create (or check) the schema; safe when many processes race to do it."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    check_version(version)
    if version == SCHEMA_VERSION:
        return

    def create() -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            check_version(current)
            if current < SCHEMA_VERSION:
                for stmt in _DDL.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    _retry(create)


def _retry(fn: Callable[[], T], attempts: int = 5) -> T | None:
    """Run ``fn`` again when SQLite reports a lock past the busy timeout."""
    for i in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or i == attempts - 1:
                raise
            time.sleep(0.05 * (i + 1))
    return None
