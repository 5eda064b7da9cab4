"""A faulty OTLP collector in its own process, driven line by line over a pipe.

A real collector is another process: decoding a batch in the service's own
process would charge the service's latency with the collector's CPU.  The
child runs :class:`tests.otlp_receiver.OTLPReceiver` and obeys one command a
line on stdin, answering one line on stdout:

``fault none|503|blackhole``, ``close`` (refuse connections), ``reopen``,
``count`` (distinct span ids received), ``has NAME`` (a span of that name
arrived), ``quit``.  The child exits when its stdin closes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

__all__ = ["CollectorProcess"]

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class CollectorProcess:
    """``c = CollectorProcess()``; ``c.endpoint``; ``c.set_fault("503")``; ``c.stop()``."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from tests.reliability import collector; collector.serve()"],
            cwd=HERE, env={**os.environ, "PYTHONPATH": HERE}, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1)
        self.port = int(self._read().split()[1])
        self.endpoint = f"127.0.0.1:{self.port}"

    def _read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the collector process died")
        return line.strip()

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def set_fault(self, fault: str | None) -> None:
        self.ask(f"fault {fault or 'none'}")

    def close_port(self) -> None:
        self.ask("close")

    def reopen_port(self) -> None:
        self.ask("reopen")

    def count(self) -> int:
        return int(self.ask("count"))

    def wait_for_name(self, name: str, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ask(f"has {name}") == "yes":
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ask("quit")
            except (RuntimeError, OSError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def serve() -> None:
    """The child: an OTLPReceiver and the command loop."""
    from tests.otlp_receiver import OTLPReceiver

    receiver = OTLPReceiver().start()
    print(f"PORT {receiver.port}", flush=True)
    is_open = True
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "fault":
            receiver.set_fault(None if arg == "none" else arg)
            out = "ok"
        elif cmd == "close":
            if is_open:
                receiver.close_port()
            is_open = False
            out = "ok"
        elif cmd == "reopen":
            if not is_open:
                receiver.reopen_port()
            is_open = True
            out = "ok"
        elif cmd == "count":
            out = str(len({s.span_id for s in list(receiver.spans)}))
        elif cmd == "has":
            out = "yes" if any(s.name == arg for s in list(receiver.spans)) else "no"
        elif cmd == "quit":
            print("ok", flush=True)
            break
        else:
            out = f"unknown command {cmd!r}"
        print(out, flush=True)
    if is_open:
        receiver.stop()
