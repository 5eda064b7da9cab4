"""Symmetric, idempotent class-attribute patching for the oslo.messaging hooks.

``apply()`` replaces ``owner.name`` with ``make(original)``; ``remove()``
restores the original only if our wrapper is still the attribute.  When
someone else wrapped on top of us meanwhile (another instrumentation, a test
double), restoring would silently drop their wrapper, so ours is left in place
but made inert: every wrapper checks :attr:`Patch.active` and calls straight
through when it is False.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Patch"]


class Patch:
    """One patched attribute; ``make(original, patch)`` builds the wrapper."""

    def __init__(self, owner: Any, name: str,
                 make: Callable[[Callable[..., Any], Patch], Callable[..., Any]]) -> None:
        self.owner = owner
        self.name = name
        self._make = make
        self.active = False
        self._owned = True
        self.original: Callable[..., Any] | None = None
        self.wrapper: Callable[..., Any] | None = None

    def apply(self) -> None:
        if self.active:
            return
        self._owned = self.name in self.owner.__dict__
        original = (self.owner.__dict__[self.name] if self._owned
                    else getattr(self.owner, self.name))
        wrapper = self._make(original, self)
        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        self.original, self.wrapper = original, wrapper
        setattr(self.owner, self.name, wrapper)
        self.active = True

    def remove(self) -> None:
        if not self.active:
            return
        self.active = False
        if self.owner.__dict__.get(self.name) is self.wrapper:
            if self._owned:
                setattr(self.owner, self.name, self.original)
            else:  # it was inherited: uncover the base class's attribute again
                delattr(self.owner, self.name)
        self.original = self.wrapper = None
