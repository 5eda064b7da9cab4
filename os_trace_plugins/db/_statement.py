"""Per-statement values, parsed once per distinct statement text.

An OpenStack service runs a few hundred distinct statements a million times
each, so ``db.operation.name``, ``db.collection.name``, the span name and the
cut ``db.query.text`` are derived once per (statement, maximum length) and
kept in a bounded LRU (:func:`functools.lru_cache`, C-implemented: a hit costs
about a dictionary lookup).  Parsing is deliberately shallow: the first
keyword is the operation; the first table after FROM / INTO / UPDATE / TABLE
is the collection, and only when it is unambiguous (no join, no subquery, no
comma list), because a wrong collection name is worse than none.

Every step is linear in the statement's length (leading comments are skipped
by a loop, not a backtracking regex: ``"/**/" * 26`` once took 14 s), and a
statement longer than :data:`CACHE_MAX_LENGTH` is parsed without being kept,
so a service issuing huge distinct statements holds no copy of them.
"""

from __future__ import annotations

import functools
import re

__all__ = ["StatementInfo", "parse", "CACHE_SIZE", "CACHE_MAX_LENGTH"]

#: distinct statements remembered (an ORM-heavy service has a few thousand)
CACHE_SIZE = 4096
#: longer statements are parsed on every execution and never cached
CACHE_MAX_LENGTH = 16384

_SPACE = re.compile(r"\s*")
_WORD = re.compile(r"[A-Za-z]+")
_TABLE = r'((?:[`"\[]?[\w$]+[`"\]]?\.)?[`"\[]?[\w$]+[`"\]]?)'
_COLLECTION = {
    "SELECT": re.compile(r"\bFROM\s+" + _TABLE + r"(?P<rest>.*)$", re.I | re.S),
    "DELETE": re.compile(r"\bFROM\s+" + _TABLE, re.I),
    "INSERT": re.compile(r"\bINTO\s+" + _TABLE, re.I),
    "REPLACE": re.compile(r"\bINTO\s+" + _TABLE, re.I),
    "UPDATE": re.compile(r"^\s*UPDATE\s+" + _TABLE, re.I),
    "CREATE": re.compile(r"\bTABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?" + _TABLE, re.I),
    "DROP": re.compile(r"\bTABLE\s+(?:IF\s+EXISTS\s+)?" + _TABLE, re.I),
    "ALTER": re.compile(r"\bTABLE\s+" + _TABLE, re.I),
    "TRUNCATE": re.compile(r"^\s*TRUNCATE\s+(?:TABLE\s+)?" + _TABLE, re.I),
}
#: longest schema.table we report (PostgreSQL: 63 per part, MySQL: 64)
_MAX_NAME = 160
_AMBIGUOUS = re.compile(r"\bJOIN\b|,|\(", re.I)
_QUOTES = '`"[]'

# (operation, collection or None, span name, cut query text)
StatementInfo = tuple[str | None, str | None, str, str]


def _collection(op: str, statement: str) -> str | None:
    pattern = _COLLECTION.get(op)
    if pattern is None:
        return None
    if op == "SELECT":
        if statement.count("SELECT") + statement.count("select") > 1:
            return None  # subquery / union: no single collection
        m = pattern.search(statement)
        if m is None:
            return None
        rest = m.group("rest")
        head = re.split(r"\b(?:WHERE|GROUP|ORDER|LIMIT|HAVING|FOR|OFFSET)\b", rest,
                        maxsplit=1, flags=re.I)[0]
        if _AMBIGUOUS.search(head):
            return None
    else:
        m = pattern.search(statement)
        if m is None:
            return None
    if len(m.group(1)) > _MAX_NAME:
        return None  # no database names a table so: not a name to put in a span
    return "".join(ch for ch in m.group(1) if ch not in _QUOTES)


def _first_word(statement: str) -> str | None:
    """The first keyword after whitespace, ``/* */`` and ``--`` comments."""
    i, n = 0, len(statement)
    while i < n:
        i = _SPACE.match(statement, i).end()  # type: ignore[union-attr]
        if statement.startswith("/*", i):
            end = statement.find("*/", i + 2)
            if end < 0:
                return None
            i = end + 2
        elif statement.startswith("--", i):
            end = statement.find("\n", i + 2)
            if end < 0:
                return None
            i = end + 1
        else:
            m = _WORD.match(statement, i)
            return m.group(0) if m else None
    return None


def parse(statement: str, max_length: int) -> StatementInfo:
    """(db.operation.name, db.collection.name, span name, db.query.text)."""
    if len(statement) > CACHE_MAX_LENGTH:
        return _parse(statement, max_length)
    return _cached(statement, max_length)


def _parse(statement: str, max_length: int) -> StatementInfo:
    word = _first_word(statement)
    op = word.upper() if word and len(word) <= _MAX_NAME else None
    collection = _collection(op, statement) if op else None
    if op and collection:
        name = f"{op} {collection}"
    else:
        name = op or "SQL"
    text = statement if len(statement) <= max_length else statement[:max_length]
    return op, collection, name, text


_cached = functools.lru_cache(maxsize=CACHE_SIZE)(_parse)
#: forget the cached statements (the maximum statement length changed)
cache_clear = _cached.cache_clear
