"""Per-statement values, parsed once per distinct statement text.

An OpenStack service runs a few hundred distinct statements a million times
each, so ``db.operation.name``, ``db.collection.name``, the span name and the
cut ``db.query.text`` are derived once per (statement, maximum length) and
kept in a bounded LRU (:func:`functools.lru_cache`, C-implemented: a hit costs
about a dictionary lookup).  Parsing is deliberately shallow: the first
keyword is the operation; the first table after FROM / INTO / UPDATE / TABLE
is the collection, and only when it is unambiguous (no join, no subquery, no
comma list), because a wrong collection name is worse than none.
"""

from __future__ import annotations

import functools
import re

__all__ = ["StatementInfo", "parse", "CACHE_SIZE"]

#: distinct statements remembered (an ORM-heavy service has a few thousand)
CACHE_SIZE = 4096

_FIRST_WORD = re.compile(r"\s*(?:/\*.*?\*/\s*|--[^\n]*\n\s*)*([A-Za-z]+)", re.S)
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
    return "".join(ch for ch in m.group(1) if ch not in _QUOTES)


@functools.lru_cache(maxsize=CACHE_SIZE)
def parse(statement: str, max_length: int) -> StatementInfo:
    """(db.operation.name, db.collection.name, span name, db.query.text)."""
    m = _FIRST_WORD.match(statement)
    op = m.group(1).upper() if m else None
    collection = _collection(op, statement) if op else None
    if op and collection:
        name = f"{op} {collection}"
    else:
        name = op or "SQL"
    text = statement if len(statement) <= max_length else statement[:max_length]
    return op, collection, name, text
