"""Fixtures for class rounds: a fresh database per test (SQLite, and PostgreSQL: see tests/conftest.py)
and the real claim bank."""

from __future__ import annotations

import pytest

from kqv_demo.content.loader import Bank, load_bank
from kqv_demo.storage import Store


@pytest.fixture(scope="session")
def bank() -> Bank:
    return load_bank(dialogue=False)


@pytest.fixture
def url(database_url: str) -> str:
    return database_url


@pytest.fixture
def store(url: str) -> Store:
    return Store(url)
