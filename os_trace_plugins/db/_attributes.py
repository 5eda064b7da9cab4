"""Per-engine span attributes, computed once per engine.

``db.system.name``, ``db.namespace``, ``server.address`` and ``server.port``
never change for an engine, so they are derived on its first traced
statement and kept on the engine object itself (one attribute read per query
afterwards).  The same object caches, per statement text, the span name and
the complete attribute dict handed to ``start_span``: a traced query does two
dictionary lookups and no string work.

MariaDB speaks the MySQL protocol through the same dialects; it is told apart
by the server version the dialect read on its first connection
(``dialect.is_mariadb``, or "MariaDB" in ``server_version_info``).  Until the
dialect has connected the values are not cached.
"""

from __future__ import annotations

import weakref
from typing import Any

from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.db import _statement as _statement

__all__ = ["EngineInfo", "engine_info", "clear_statement_caches", "system_name",
           "STATEMENTS_PER_ENGINE", "SLOT"]

#: distinct statements whose attribute dicts one engine keeps
STATEMENTS_PER_ENGINE = 2048

#: the attribute of the Engine object that holds its EngineInfo
SLOT = "_os_trace_db_info"

_SYSTEMS = {
    "postgresql": "postgresql",
    "sqlite": "sqlite",
    "mssql": "microsoft.sql_server",
    "oracle": "oracle.db",
}
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306,
                  "microsoft.sql_server": 1433, "oracle.db": 1521}

_all_infos: weakref.WeakSet[EngineInfo] = weakref.WeakSet()

Entry = tuple[str, dict[str, Any]]


def system_name(dialect: Any) -> tuple[str, bool]:
    """(db.system.name, whether the answer is final for this dialect)."""
    name = getattr(dialect, "name", None) or "other_sql"
    if name in ("mysql", "mariadb"):
        version = getattr(dialect, "server_version_info", None)
        if getattr(dialect, "is_mariadb", False) or name == "mariadb":
            return "mariadb", True
        if version is None:
            return "mysql", False  # not connected yet: ask again next time
        if any("mariadb" in str(part).lower() for part in version):
            return "mariadb", True
        return "mysql", True
    return _SYSTEMS.get(name, name), True


class EngineInfo:
    """The constant attributes of one engine and its statement cache."""

    __slots__ = ("base", "system", "final", "entries", "__weakref__")

    def __init__(self, engine: Any) -> None:
        dialect = engine.dialect
        self.system, self.final = system_name(dialect)
        url = engine.url
        base: dict[str, Any] = {"db.system.name": self.system}
        database = url.database
        if database and not (self.system == "sqlite" and database == ":memory:"):
            base["db.namespace"] = database
        if url.host:
            base["server.address"] = url.host
            port = url.port or _DEFAULT_PORTS.get(self.system)
            if port:
                base["server.port"] = int(port)
        self.base = base
        self.entries: dict[str, Entry] = {}

    def entry(self, statement: str) -> Entry:
        """(span name, attributes) for ``statement``; cached."""
        found = self.entries.get(statement)
        if found is not None:
            return found
        op, collection, name, text = _statement.parse(
            statement, SWITCHES.sql_max_statement_length)
        attrs = dict(self.base)
        attrs["db.query.text"] = text
        if op:
            attrs["db.operation.name"] = op
        if collection:
            attrs["db.collection.name"] = collection
        entry = (name, attrs)
        if len(statement) > _statement.CACHE_MAX_LENGTH:
            return entry  # never kept: a huge statement is not held in memory
        if len(self.entries) >= STATEMENTS_PER_ENGINE:
            self.entries.clear()  # crude bound; refilled by the hot statements
        self.entries[statement] = entry
        return entry


def engine_info(engine: Any) -> EngineInfo:
    """The cached :class:`EngineInfo` of ``engine`` (built on first use)."""
    info: EngineInfo | None = getattr(engine, SLOT, None)
    if info is not None:
        return info
    proxied = getattr(engine, "_proxied", None)  # engine.execution_options(...)
    if proxied is not None and proxied is not engine:
        info = engine_info(proxied)  # share the parent's info and statement cache
    else:
        info = EngineInfo(engine)
    if info.final:
        try:
            setattr(engine, SLOT, info)
            _all_infos.add(info)
        except (AttributeError, TypeError):  # an engine we cannot annotate
            pass
    return info


def clear_statement_caches(*_: Any) -> None:
    """Forget cached statements (the maximum statement length changed)."""
    _statement.cache_clear()
    for info in list(_all_infos):
        info.entries.clear()
