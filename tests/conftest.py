"""Shared pytest fixtures: the real services (see tests/services.py)."""

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
