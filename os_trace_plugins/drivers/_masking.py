"""Render call arguments and results for span attributes, secrets masked.

Driver calls carry credentials (an iSCSI CHAP password in ``connection_info``,
a Keystone token in the request context, a ``mysql://user:pw@host`` URL).
Arguments are hidden unless an operator or a call site reveals them, and even
then:

* a value whose *name* looks like a secret (``password``, ``token``,
  ``secret``, ``key``, ``auth``, ``credential``, ``passphrase``...) is
  replaced by ``***``, at any depth of nested dicts;
* inside rendered text, ``name=value`` / ``"name": value`` pairs with a
  secret-looking name and the password of a URL (``scheme://user:pw@``) are
  masked too, so an object's ``repr`` cannot leak what a dict would not;
* every value is bounded (items per container, nesting depth, characters).

Over-masking (``key_name``, ``author``) is accepted: a hidden harmless value
costs an operator a little; a leaked password costs far more.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MASK", "is_secret_name", "mask_text", "render", "MAX_LENGTH"]

MASK = "***"
MAX_LENGTH = 256
MAX_ITEMS = 20
MAX_DEPTH = 4

_SECRET_WORDS = (
    r"pass(?:word|wd|phrase)?|pwd|token|secret|key|auth|credential|cred|"
    r"private|signature|cookie|session|cert|chap"
)
_SECRET_NAME = re.compile(_SECRET_WORDS, re.IGNORECASE)
# name=value, name: value, 'name': 'value', "name"="value" inside rendered text
_SECRET_PAIR = re.compile(
    r"(?P<name>['\"]?[\w.-]*(?:" + _SECRET_WORDS + r")[\w.-]*['\"]?\s*[=:]\s*)"
    r"(?P<value>'[^']*'|\"[^\"]*\"|[^\s,;)}\]&]+)",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]*(?=@)",
                           re.IGNORECASE)


def is_secret_name(name: object) -> bool:
    """Whether an argument or dict key name looks like it holds a secret."""
    return isinstance(name, str) and _SECRET_NAME.search(name) is not None


def mask_text(text: str) -> str:
    """Mask URL passwords and ``secret_name=value`` pairs inside free text."""
    if "://" in text:
        text = _URL_PASSWORD.sub(r"\g<head>" + MASK, text)
    return _SECRET_PAIR.sub(lambda m: m.group("name") + MASK, text)


def _bound(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...(+{len(text) - limit} chars)"


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # a driver object whose __repr__ is broken
        return f"<{type(value).__name__} (repr failed)>"


def _render(value: Any, depth: int, limit: int) -> str:
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(_bound(value, limit))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if depth >= MAX_DEPTH:
        return f"<{type(value).__name__}>"
    if isinstance(value, Mapping):
        parts = []
        try:
            items = list(value.items())
        except Exception:
            return f"<{type(value).__name__}>"
        for k, v in items[:MAX_ITEMS]:
            shown = MASK if is_secret_name(k) else _render(v, depth + 1, limit)
            parts.append(f"{_safe_repr(k)}: {shown}")
        if len(items) > MAX_ITEMS:
            parts.append(f"...(+{len(items) - MAX_ITEMS} items)")
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        seq = list(value)
        parts = [_render(v, depth + 1, limit) for v in seq[:MAX_ITEMS]]
        if len(seq) > MAX_ITEMS:
            parts.append(f"...(+{len(seq) - MAX_ITEMS} items)")
        brackets = {list: "[]", tuple: "()"}.get(type(value), "{}")
        return brackets[0] + ", ".join(parts) + brackets[1]
    # any other object: its repr, with secret-looking pairs masked
    return mask_text(_bound(_safe_repr(value), limit * 2))


def render(value: Any, name: str | None = None, limit: int = MAX_LENGTH) -> str:
    """The masked, bounded text of ``value`` (``***`` if ``name`` looks secret)."""
    if name is not None and is_secret_name(name):
        return MASK
    return _bound(mask_text(_render(value, 0, limit)), limit)
