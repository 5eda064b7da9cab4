"""Length caps for span values taken from the outside (headers, messages).

A client or a garbled message must not make a span, and so the export queue,
grow with what it sent: a 1 MB ``Host`` header or RPC method name is cut
here before it becomes an attribute or a span name.  One cap for names and
ids, a longer one for paths (docs/reliability.md, "5. Hostile input").
"""

from __future__ import annotations

__all__ = ["MAX_VALUE_LENGTH", "MAX_PATH_LENGTH", "cut"]

#: names, ids, addresses, user agents taken from a request or a message
MAX_VALUE_LENGTH = 256
#: ``url.path`` of an inbound request
MAX_PATH_LENGTH = 2048


def cut(value: str, limit: int = MAX_VALUE_LENGTH) -> str:
    """``value`` cut to ``limit`` characters (no copy when it fits)."""
    return value if len(value) <= limit else value[:limit]
