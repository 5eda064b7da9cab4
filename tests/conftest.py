"""Shared pytest fixtures: the real services (tests/services), the figures summary."""

from __future__ import annotations

import pytest

from tests.services import MARIADB_URL, POSTGRES_URL, RABBIT_URL, require_service


@pytest.fixture
def rabbitmq() -> str:
    require_service("rabbitmq")
    return RABBIT_URL


@pytest.fixture
def postgresql() -> str:
    require_service("postgresql")
    return POSTGRES_URL


@pytest.fixture
def mariadb() -> str:
    require_service("mariadb")
    return MARIADB_URL


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """Print the figures reliability tests recorded (tests/figures.py)."""
    from tests.figures import FIGURES, line

    if not FIGURES:
        return
    terminalreporter.section("reliability figures (docs/reliability.md)")
    for part, case, values in FIGURES:
        terminalreporter.write_line(line(part, case, values))
