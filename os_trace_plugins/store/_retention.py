"""Trimming the store: by age (``store_max_age_hours``) and size (``store_max_size_mb``).

Whole traces are removed (by start time, which is indexed), oldest first,
so a report never shows half a trace that retention cut.  Size is the live
data (pages in use, not the file's high-water mark); freed pages go back to
the filesystem with incremental vacuum.  Runs in the exporter's background
thread, at start and then at most once per :data:`INTERVAL_S`.
"""

from __future__ import annotations

import sqlite3
import time

__all__ = ["INTERVAL_S", "trim", "live_bytes"]

INTERVAL_S = 60.0
_BATCH = 500


def live_bytes(conn: sqlite3.Connection) -> int:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def _delete(conn: sqlite3.Connection, trace_ids: list[str]) -> None:
    marks = ",".join("?" * len(trace_ids))
    conn.execute(f"DELETE FROM spans WHERE trace_id IN ({marks})", trace_ids)
    conn.execute(f"DELETE FROM trace_services WHERE trace_id IN ({marks})", trace_ids)
    conn.execute(f"DELETE FROM traces WHERE trace_id IN ({marks})", trace_ids)


def trim(conn: sqlite3.Connection, max_age_hours: float, max_size_mb: float,
         now_ns: int | None = None) -> int:
    """Delete traces past the limits; return how many were removed.

    ``conn`` is in autocommit mode; each batch is its own short transaction
    so concurrent writers are never held up for long.
    """
    removed = 0
    now_ns = time.time_ns() if now_ns is None else now_ns
    if max_age_hours and max_age_hours > 0:
        cutoff = now_ns - int(max_age_hours * 3600 * 1e9)
        while True:
            ids = [r[0] for r in conn.execute(
                "SELECT trace_id FROM traces WHERE start_ns < ? LIMIT ?",  # indexed
                (cutoff, _BATCH))]
            if not ids:
                break
            with _tx(conn):
                _delete(conn, ids)
            removed += len(ids)
    if max_size_mb and max_size_mb > 0:
        limit = int(max_size_mb * 1024 * 1024)
        while live_bytes(conn) > limit:
            total = conn.execute("SELECT count(*) FROM traces").fetchone()[0]
            if not total:
                break
            n = max(1, total // 10)  # the oldest tenth per pass
            ids = [r[0] for r in conn.execute(
                "SELECT trace_id FROM traces ORDER BY start_ns LIMIT ?", (n,))]
            with _tx(conn):
                _delete(conn, ids)
            removed += len(ids)
    if removed:
        conn.execute("PRAGMA incremental_vacuum")
    return removed


class _tx:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
