"""Shared pytest fixtures: the real services (tests/services), the figures
summary, and the session-wide secret scan (tests/leakscan.py)."""

from __future__ import annotations

import pytest

from tests import leakscan
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


def pytest_configure(config: pytest.Config) -> None:
    """Wrap the exporters and give the run its own temporary directory (leakscan)."""
    leakscan.install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Scan every store the run wrote; a secret found fails the run."""
    if leakscan.session_root() is None:
        return
    from tests.figures import report

    clean = leakscan.finish()
    report("6 secrets", "whole run", **leakscan.SCANNER.figures())
    if not clean and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """Print the figures reliability tests recorded (tests/figures.py) and the
    secrets the scan found."""
    from tests.figures import FIGURES, line

    findings = leakscan.SCANNER.findings
    if findings:
        terminalreporter.section("SECRETS FOUND in exported spans or stores", red=True)
        for where, name, excerpt in findings:
            terminalreporter.write_line(f"{name}: {where}: ...{excerpt}...", red=True)
        terminalreporter.write_line(f"(temporary files kept in {leakscan.session_root()})")
    if not FIGURES:
        return
    terminalreporter.section("reliability figures (docs/reliability.md)")
    for part, case, values in FIGURES:
        terminalreporter.write_line(line(part, case, values))
