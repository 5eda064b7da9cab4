"""``StoreReader``: the read side of the embedded store, for ``os-trace``.

The file is opened through a ``file:...?mode=ro`` URI, so a reader can never
modify stored spans, whatever happens.  Every SQLite failure becomes a
:class:`~os_trace_plugins.store._schema.StoreError` with a one-line message
(missing file, not a database, corrupt, locked, newer schema).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from os_trace_plugins.store import _schema as schema
from os_trace_plugins.store._schema import StoreError

__all__ = ["StoreReader", "TraceSummary"]

_READ_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class TraceSummary:
    """One line of ``os-trace list``."""

    trace_id: str
    start_ns: int
    end_ns: int
    span_count: int
    error_count: int
    root_name: str
    root_service: str
    services: tuple[str, ...]
    complete: bool  # the root span (no parent) is stored

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _friendly(path: str, exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreError(f"the span store {path} is locked by another process "
                          f"({text}); try again")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StoreError(f"{path} is not a readable span store ({text})")
    if "unable to open" in text:
        return StoreError(f"cannot open the span store {path} ({text})")
    return StoreError(f"span store {path}: {text}")


def _check_row(r: Any, attributes: Any, events: Any, links: Any, resource: Any) -> None:
    """The shapes the writer stores; a damaged row raises ValueError (one line)."""
    if not (isinstance(attributes, dict) and isinstance(resource, dict)
            and isinstance(events, list) and isinstance(links, list)
            and all(isinstance(e, dict) and isinstance(e.get("attributes", {}), dict)
                    for e in events)
            and all(isinstance(x, dict) for x in links)):
        raise ValueError("attributes, events, links or resource of the wrong shape")
    if not (isinstance(r[6], int) and isinstance(r[7], int)
            and all(isinstance(v, str) for v in (r[0], r[1], r[3], r[4], r[5], r[8]))
            and (r[2] is None or isinstance(r[2], str))
            and (r[9] is None or isinstance(r[9], str))):
        raise ValueError("ids, names or times of the wrong type")


class StoreReader:
    """Read-only access to a store file."""

    def __init__(self, path: str, timeout: float | None = None) -> None:
        timeout = _READ_TIMEOUT_S if timeout is None else timeout
        self.path = os.path.abspath(os.path.expanduser(path))
        if not os.path.exists(self.path):
            raise StoreError(f"no span store at {self.path} (nothing exported yet? "
                             f"set [profiler] enabled = true and connection_string = "
                             f"sqlite:///{self.path}, or pass --store PATH)")
        try:
            self._conn = sqlite3.connect(f"file:{quote(self.path)}?mode=ro", uri=True,
                                         timeout=timeout, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            schema.check_version(version)
            if version < 1:
                raise StoreError(f"{self.path} is a SQLite file but not an os-trace "
                                 f"span store (no schema)")
        except sqlite3.Error as exc:
            raise _friendly(self.path, exc) from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _friendly(self.path, exc) from None
        except UnicodeDecodeError as exc:  # a damaged page: text that is not UTF-8
            raise StoreError(f"{self.path} is not a readable span store (text that is "
                             f"not UTF-8: {exc.reason})") from None

    def list_traces(self, service: str | None = None, errors: bool = False,
                    min_duration_ms: float | None = None, limit: int = 20,
                    ) -> list[TraceSummary]:
        """Most recent traces first, filtered."""
        where: list[str] = []
        params: list[Any] = []
        if service:
            where.append("t.trace_id IN (SELECT trace_id FROM trace_services "
                         "WHERE service = ?)")
            params.append(service)
        if errors:
            where.append("t.error_count > 0")
        if min_duration_ms is not None:
            where.append("t.end_ns - t.start_ns >= ?")
            params.append(int(min_duration_ms * 1e6))
        sql = ("SELECT t.trace_id, t.start_ns, t.end_ns, t.span_count, t.error_count, "
               "t.root_name, t.root_service, t.first_name, t.first_service, "
               "(SELECT group_concat(s.service, char(31)) FROM trace_services s "
               " WHERE s.trace_id = t.trace_id) FROM traces t")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY t.start_ns DESC LIMIT ?"
        params.append(max(0, int(limit)))
        with self._errors():
            rows = self._conn.execute(sql, params).fetchall()
        return [TraceSummary(r[0], r[1], r[2], r[3], r[4], r[5] or r[7], r[6] or r[8],
                             tuple(sorted((r[9] or "").split("\x1f"))), r[5] is not None)
                for r in rows]

    def resolve(self, trace_id: str) -> str:
        """A full trace id from a full id or a unique prefix of at least 6 hex digits."""
        wanted = trace_id.strip().lower()
        if wanted.startswith("0x"):
            wanted = wanted[2:]
        if not wanted or any(c not in "0123456789abcdef" for c in wanted) \
                or len(wanted) > 32:
            raise StoreError(f"{trace_id!r} is not a trace id (32 hex digits)")
        with self._errors():
            if len(wanted) == 32:
                row = self._conn.execute("SELECT trace_id FROM traces WHERE trace_id = ?",
                                         (wanted,)).fetchone()
                if row:
                    return str(row[0])
                raise StoreError(f"trace {wanted} is not in the store {self.path}")
            if len(wanted) < 6:
                raise StoreError(f"trace id prefix {trace_id!r} is too short "
                                 f"(give at least 6 hex digits)")
            rows = self._conn.execute(
                "SELECT trace_id FROM traces WHERE trace_id >= ? AND trace_id < ? LIMIT 2",
                (wanted, wanted + "g")).fetchall()
        if not rows:
            raise StoreError(f"no trace starting with {wanted} in the store {self.path}")
        if len(rows) > 1:
            raise StoreError(f"trace id prefix {wanted} is ambiguous; give more digits")
        return str(rows[0][0])

    def spans(self, trace_id: str) -> list[dict[str, Any]]:
        """Every stored span of a trace, as plain dicts (see report.model)."""
        full = self.resolve(trace_id)
        with self._errors():
            rows = self._conn.execute(
                "SELECT trace_id, span_id, parent_id, service, name, kind, start_ns, "
                "end_ns, status_code, status_message, attributes, events, links, "
                "resource, scope FROM spans WHERE trace_id = ? ORDER BY start_ns",
                (full,)).fetchall()
        out = []
        resources: dict[Any, Any] = {}  # identical per process: parse each once
        for r in rows:
            try:
                attributes = json.loads(r[10])
                events = json.loads(r[11]) if r[11] != "[]" else []
                links = json.loads(r[12]) if r[12] != "[]" else []
                resource = resources.get(r[13])
                if resource is None:
                    resource = resources[r[13]] = json.loads(r[13])
                _check_row(r, attributes, events, links, resource)
            except (ValueError, TypeError) as exc:
                raise StoreError(f"span {r[1]} of trace {full} is corrupt ({exc})") from None
            out.append({"trace_id": r[0], "span_id": r[1], "parent_id": r[2],
                        "service": r[3], "name": r[4], "kind": r[5], "start_ns": r[6],
                        "end_ns": r[7], "status_code": r[8], "status_message": r[9],
                        "attributes": attributes, "events": events, "links": links,
                        "resource": resource, "scope": r[14]})
        return out

    def count_traces(self) -> int:
        with self._errors():
            return int(self._conn.execute("SELECT count(*) FROM traces").fetchone()[0])
