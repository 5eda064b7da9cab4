"""The demo's service processes (broker mode): start, wait until ready, stop.

Each child runs :mod:`os_trace_plugins.demo._process`; it prints ``READY``
when serving and exits (flushing its spans) when its stdin is closed.  Every
child is bounded in time: one that is not ready in time, or does not exit
after its stdin closed, is killed.  Child stderr goes to a log file next to
the store, named in any error.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from typing import IO

from os_trace_plugins.demo._process import ROLES

__all__ = ["Children"]


class Children:
    def __init__(self, url: str, store: str, suffix: str, db_url: str, key: str) -> None:
        self.args = ["--transport-url", url, "--store", store, "--suffix", suffix,
                     "--db-url", db_url, "--key", key]
        self.log_path = os.path.join(os.path.dirname(os.path.abspath(store)),
                                     f"demo-services-{suffix}.log")
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self._lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self._log: IO[str] | None = None
        self.done: dict[str, int] = {}

    def _reader(self, role: str, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put((role, line.strip()))
        self._lines.put((role, "EOF"))

    def start(self, timeout: float) -> list[str]:
        """Start every role; return their notes. RuntimeError if one fails."""
        from os_trace_plugins.demo._runner import DemoError

        self._log = open(self.log_path, "a", encoding="utf-8")
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        for role in ROLES:
            proc = subprocess.Popen(
                [sys.executable, "-m", "os_trace_plugins.demo._process", role, *self.args],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
                env=env)
            self.procs[role] = proc
            assert proc.stdout is not None
            threading.Thread(target=self._reader, args=(role, proc.stdout),
                             daemon=True).start()
        notes: list[str] = []
        waiting = set(ROLES)
        deadline = time.monotonic() + timeout
        while waiting:
            try:
                role, line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.stop(timeout=5)
                raise DemoError(f"demo services not ready after {timeout:.0f}s "
                                f"({', '.join(sorted(waiting))}); see {self.log_path}")
            if line == "READY":
                waiting.discard(role)
            elif line.startswith("NOTE "):
                if line[5:] not in notes:
                    notes.append(line[5:])
            elif line == "EOF":
                self.stop(timeout=5)
                raise DemoError(f"demo {role} exited at start; see {self.log_path}")
        return notes

    def wait_done(self, expected: int, timeout: float) -> bool:
        """Until the worker and the listener each handled ``expected`` messages."""
        deadline = time.monotonic() + timeout
        while any(self.done.get(r, 0) < expected for r in ("worker", "listener")):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                role, line = self._lines.get(timeout=left)
            except queue.Empty:
                return False
            if line.startswith("DONE "):
                self.done[role] = self.done.get(role, 0) + 1
        return True

    def stop(self, timeout: float) -> list[str]:
        """Close every stdin, wait for the exits (spans are flushed then)."""
        notes = []
        for proc in self.procs.values():
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for role, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
                notes.append(f"demo {role} did not stop in time and was killed "
                             f"(its last spans may be missing)")
        self.procs.clear()
        if self._log is not None:
            self._log.close()
            self._log = None
        return notes
