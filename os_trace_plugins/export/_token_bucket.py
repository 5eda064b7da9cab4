"""A thread-safe token bucket on the monotonic clock (Jaeger's rate limiter).

Jaeger's rate-limiting strategy and the per-operation floor and ceiling are
all "at most N roots per second": credits accrue at ``rate`` per second up to
``burst``, a decision spends one.  Shared by every thread of the process, so
a lock guards the balance (an uncontended ``threading.Lock`` costs well under
a microsecond).  Jaeger's clients start the bucket full; so does this one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` credits per second, at most ``burst`` banked; starts full."""

    __slots__ = ("rate", "burst", "_balance", "_last", "_lock", "_clock")

    def __init__(self, rate: float, burst: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = max(0.0, float(rate))
        self.burst = max(0.0, float(burst))
        self._clock = clock
        self._balance = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Spend one credit if there is one; never blocks beyond the lock."""
        with self._lock:
            now = self._clock()
            balance = self._balance + (now - self._last) * self.rate
            self._last = now
            if balance > self.burst:
                balance = self.burst
            if balance >= 1.0:
                self._balance = balance - 1.0
                return True
            self._balance = balance
            return False
