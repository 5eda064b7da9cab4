"""Real services on loopback and how the tests reach them.

Locally a missing service skips the test; under ``CI=true`` it fails with a
clear message, because CI must run the real layer for real.
"""

from __future__ import annotations

import os
import socket

import pytest

__all__ = ["SERVICES", "RABBIT_URL", "POSTGRES_URL", "MARIADB_URL", "require_service"]
SERVICES = {
    "rabbitmq": ("127.0.0.1", 5672, "rabbitmq-server -detached"),
    "postgresql": ("127.0.0.1", 5432,
                   "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"),
    "mariadb": ("127.0.0.1", 3306,
                "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"),
    "redis": ("127.0.0.1", 6379, "redis-server --daemonize yes"),
}

RABBIT_URL = os.environ.get("OS_TRACE_RABBIT_URL", "rabbit://guest:guest@127.0.0.1:5672/")
POSTGRES_URL = os.environ.get("OS_TRACE_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("OS_TRACE_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def require_service(name: str) -> None:
    """Skip (locally) or fail (CI=true) when service ``name`` is unreachable."""
    host, port, how = SERVICES[name]
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        msg = (f"{name} is not reachable on {host}:{port} ({exc}); "
               f"start it with: {how}")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"real-service test cannot run: {msg}", pytrace=False)
    pytest.skip(msg)


