"""Fixtures for class rounds: a fresh database per test and the real claim bank.

The database is a temporary SQLite file; set KQV_TEST_DATABASE_URL (e.g.
postgresql+psycopg://kqv@127.0.0.1:55432/kqv_test) to run the same tests against a server
database instead. Its tables are dropped and recreated for every test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from kqv_demo.content.loader import Bank, load_bank
from kqv_demo.storage import Store, metadata


@pytest.fixture(scope="session")
def bank() -> Bank:
    return load_bank(dialogue=False)


@pytest.fixture
def url(tmp_path: Path) -> str:
    server = os.environ.get("KQV_TEST_DATABASE_URL")
    if not server:
        return f"sqlite:///{tmp_path / 'class.sqlite3'}"
    engine = create_engine(server)
    metadata.drop_all(engine)
    engine.dispose()
    return server


@pytest.fixture
def store(url: str) -> Store:
    return Store(url)
