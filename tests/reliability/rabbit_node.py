"""A throw-away RabbitMQ node of our own, for the tests that hurt the broker.

The shared node on 127.0.0.1:5672 serves every engineer's tests and CI at
once: closing all its connections or stopping its app would break them.  The
broker-fault tests start a private node instead (own node name, free AMQP and
distribution ports, its own mnesia/log directory and config file, no
plugins), hurt it with ``rabbitmqctl -n <node> close_all_connections`` /
``stop_app`` / ``start_app``, and ``stop`` it at teardown.

Locally a node that cannot start (no ``rabbitmq-server``, no root) skips the
test; under ``CI=true`` it fails with the reason and the server's log tail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

__all__ = ["PrivateRabbit", "start_private_rabbit"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRabbit:
    """A running private node: ``url``, ``ctl(...)``, ``stop()``."""

    def __init__(self) -> None:
        self.name = f"otpfault{uuid.uuid4().hex[:6]}@localhost"
        self.port = _free_port()
        self.dist_port = _free_port()
        # not under the run's own 0700 TMPDIR (tests/leakscan.py): the node
        # runs as the rabbitmq user, which must reach this directory
        self.base = tempfile.mkdtemp(prefix="os-trace-rabbit-",
                                     dir=os.environ.get("OS_TRACE_SYSTEM_TMPDIR"))
        self.url = f"rabbit://guest:guest@127.0.0.1:{self.port}/"
        self.pid_file = os.path.join(self.base, "pid")

    def _env(self) -> dict[str, str]:
        b = self.base
        return {**os.environ,
                "RABBITMQ_NODENAME": self.name,
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": os.path.join(b, "mnesia"),
                "RABBITMQ_LOG_BASE": os.path.join(b, "log"),
                "RABBITMQ_PID_FILE": self.pid_file,
                "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(b, "plugins"),
                # not /etc/rabbitmq/rabbitmq-env.conf (it names the shared node)
                "RABBITMQ_CONF_ENV_FILE": os.path.join(b, "env.conf"),
                # not /etc/rabbitmq/rabbitmq.conf (it listens on 5672)
                "RABBITMQ_CONFIG_FILE": os.path.join(b, "rabbitmq.conf"),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                    "-kernel inet_dist_use_interface {127,0,0,1}"}

    def start(self, timeout: float = 60) -> None:
        b = self.base
        with open(os.path.join(b, "env.conf"), "w", encoding="utf-8"):
            pass
        with open(os.path.join(b, "plugins"), "w", encoding="utf-8") as f:
            f.write("[].\n")
        with open(os.path.join(b, "rabbitmq.conf"), "w", encoding="utf-8") as f:
            # guest may connect over loopback only (the default), which is us
            f.write(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        if os.geteuid() == 0:  # the server script drops to the rabbitmq user
            shutil.chown(b, "rabbitmq", "rabbitmq")
            for name in os.listdir(b):
                shutil.chown(os.path.join(b, name), "rabbitmq", "rabbitmq")
        subprocess.run(["rabbitmq-server", "-detached"], env=self._env(), cwd=b,
                       check=True, capture_output=True, timeout=30)
        self.ctl("wait", self.pid_file, "--timeout", str(int(timeout)), timeout=timeout + 10)
        self.wait_amqp(timeout)

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """``rabbitmqctl -n <our node> ARGS`` (never the shared node)."""
        proc = subprocess.run(["rabbitmqctl", "-n", self.name, *args], env=self._env(),
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: "
                               f"{proc.stdout[-500:]} {proc.stderr[-1000:]}")
        return proc.stdout

    def wait_amqp(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def close_all_connections(self, why: str = "os-trace broker fault test") -> None:
        self.ctl("close_all_connections", "--global", why)

    def peer_ports(self) -> set[int]:
        """The client ports of the node's open AMQP connections.

        A connection the node closed stays listed (state ``closed``) until its
        client reads the close, which an idle pooled connection never does; a
        busy publisher's state is ``flow``.
        """
        out = self.ctl("list_connections", "peer_port", "state", "--quiet",
                       "--no-table-headers")
        rows = [line.split() for line in out.splitlines()]
        return {int(r[0]) for r in rows  # open: running, flow (credit flow), blocked...
                if len(r) == 2 and r[0].isdigit() and r[1] not in ("closed", "closing")}

    def restart_app(self, down_seconds: float = 2.0) -> None:
        self.ctl("stop_app")
        time.sleep(down_seconds)
        self.ctl("start_app")
        self.ctl("await_startup", "--timeout", "60")

    def log_tail(self) -> str:
        log = os.path.join(self.base, "log", f"{self.name}.log")
        try:
            with open(log, encoding="utf-8", errors="replace") as f:
                return f.read()[-3000:]
        except OSError as exc:
            return f"(no log: {exc})"

    def stop(self) -> None:
        try:
            self.ctl("stop", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired, OSError):
            self._kill()
        shutil.rmtree(self.base, ignore_errors=True)

    def _kill(self) -> None:
        try:
            with open(self.pid_file, encoding="utf-8") as f:
                os.kill(int(f.read().strip()), 9)
        except (OSError, ValueError):
            pass


def start_private_rabbit() -> PrivateRabbit:
    """Start a private node; skip (locally) or fail (CI=true) when it cannot run."""
    node = PrivateRabbit()
    problem = None
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        problem = "rabbitmq-server / rabbitmqctl are not installed"
    else:
        try:
            node.start()
            return node
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            problem = f"{exc}\n--- node log ---\n{node.log_tail()}"
            node.stop()
    msg = f"a private RabbitMQ node for the broker-fault tests did not start: {problem}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)
