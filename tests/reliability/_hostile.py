"""What every hostile-input property counts (docs/reliability.md, "5. Hostile input").

A property runs the real entry point on each generated case inside
:meth:`Tally.case`: an exception that escapes is counted (with the first few
examples) instead of stopping hypothesis, so the test can report how many
cases ran and then assert that none escaped.  :func:`settings` is the one
hypothesis profile: fixed seed (``derandomize``), no deadline, no example
database, so CI runs the same cases every time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from hypothesis import HealthCheck
from hypothesis import settings as _settings

__all__ = ["Tally", "settings", "longest_value"]


def settings(max_examples: int) -> Any:
    return _settings(max_examples=max_examples, deadline=None, derandomize=True,
                     database=None, suppress_health_check=list(HealthCheck))


def longest_value(spans: Iterable[Any]) -> int:
    """The longest string among the names and attribute values of ``spans``."""
    longest = 0
    for span in spans:
        longest = max(longest, len(span.name))
        for value in (span.attributes or {}).values():
            if isinstance(value, str):
                longest = max(longest, len(value))
    return longest


class Tally:
    """Cases run, exceptions escaped (with examples) and other counters."""

    def __init__(self) -> None:
        self.cases = 0
        self.escaped = 0
        self.examples: list[str] = []
        self.counts: dict[str, int] = {}

    @contextlib.contextmanager
    def case(self, label: Any = None) -> Iterator[None]:
        self.cases += 1
        try:
            yield
        except Exception as exc:  # what would have reached the service
            self.escaped += 1
            if len(self.examples) < 5:
                self.examples.append(f"{type(exc).__name__}: {exc} <- {label!r}"[:400])

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def high(self, name: str, value: int) -> None:
        self.counts[name] = max(self.counts.get(name, 0), value)

    def __getitem__(self, name: str) -> int:
        return self.counts.get(name, 0)
