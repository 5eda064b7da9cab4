"""The guard every hook body runs under.

Telemetry must never break the host: a bug in a hook, a garbled carrier or a
failing exporter is logged once (or at a bounded rate) and the service's own
call goes on untouched.  Hook code wraps its *own* work in :func:`safe_call`
(or a ``try``/``except`` that calls :func:`report_failure`); the host's call
is always made outside the guard, so the host's exceptions propagate exactly
as they would without us.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["safe_call", "RateLimitedLog", "report_failure", "reset"]

LOG = logging.getLogger("os_trace_plugins")

T = TypeVar("T")

_seen: set[tuple[str, type]] = set()
_seen_lock = threading.Lock()


def report_failure(where: str, exc: BaseException) -> None:
    """Log an internal failure once per (place, exception type), with traceback.

    Later failures of the same kind go to DEBUG so a hot path that fails on
    every message cannot flood the service log.
    """
    key = (where, type(exc))
    with _seen_lock:
        first = key not in _seen
        _seen.add(key)
    try:
        if first:
            LOG.error(
                "os_trace_plugins: internal error in %s (tracing continues, the "
                "service call is not affected): %s: %s",
                where, type(exc).__name__, exc, exc_info=exc,
            )
        else:
            LOG.debug("os_trace_plugins: internal error in %s again: %r", where, exc)
    except Exception:  # pragma: no cover - a broken logging config
        pass


def safe_call(where: str, fn: Callable[..., T], *args: Any, default: Any = None,
              **kwargs: Any) -> T | Any:
    """Call ``fn`` under the guard; on failure report it and return ``default``."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        report_failure(where, exc)
        return default


class RateLimitedLog:
    """A logger for bad input from the outside (carriers, headers, signatures).

    One line per ``interval`` seconds per key; the number of suppressed lines
    is reported with the next one so an operator sees the scale of the problem.
    """

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self._logger = logger
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, key: str, msg: str, *args: Any) -> bool:
        """Log ``msg`` unless ``key`` was logged within the interval; True if logged."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            dropped = self._suppressed.pop(key, 0)
        try:
            if dropped:
                msg = msg + " (%d similar messages suppressed)"
                args = args + (dropped,)
            self._logger.warning(msg, *args)
        except Exception:  # pragma: no cover - a broken logging config
            pass
        return True

    def reset(self) -> None:
        with self._lock:
            self._last.clear()
            self._suppressed.clear()


def reset() -> None:
    """Forget which failures were reported (tests)."""
    with _seen_lock:
        _seen.clear()
