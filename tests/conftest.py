"""Shared fixtures: the real models, loaded once per test session (no mocks on the model path), and the
progress databases the storage and class tests run against: SQLite and PostgreSQL.

`database_url` gives each test a database of its own: a fresh SQLite file, and a fresh database on the
PostgreSQL server named by $KQV_TEST_DATABASE_URL (`.ci/pg COMMAND` starts a throw-away server and sets
it). Without that variable the PostgreSQL variants are skipped on a developer's machine, but FAIL when
$CI is set: a green CI that never ran them would claim something nobody checked.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from kqv_demo.runtime import Runtime, shared_runtime
from kqv_demo.stress.service import POSTGRES_VARIABLE  # one home: what .ci/pg sets


@pytest.fixture(scope="session")
def runtime() -> Runtime:
    return shared_runtime()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the real models (it asks for `runtime`, itself or through a fixture) as
    `models`, so the fast lane (`make test-fast`: not models, not browser, not slow) can leave them out."""
    for item in items:
        if "runtime" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.models)


@pytest.fixture(scope="session")
def config(runtime: Runtime):
    """SmolLM2's config: tests read model facts from here, never from a copied number."""
    return runtime.smollm2.model.config


def postgres_server_url() -> str:
    """The PostgreSQL server for tests, or skip (fail in CI) when there is none."""
    server = os.environ.get(POSTGRES_VARIABLE)
    problem = None
    if not server:
        problem = f"${POSTGRES_VARIABLE} is not set (run the tests under .ci/pg to start a PostgreSQL of their own)"
    else:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            problem = "the driver psycopg is not installed (pip install -r requirements-dev.txt)"
    if problem is None:
        return server
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests cannot run in CI: {problem}.", pytrace=False)
    pytest.skip(f"PostgreSQL: {problem}")


@contextmanager
def fresh_postgres_database(server: str) -> Iterator[str]:
    """A new, empty database on `server` for one test; dropped afterwards (connections still open included)."""
    name = f"kqv_test_{secrets.token_hex(6)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty progress database of its own for this test, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'progress.sqlite3'}"
        return
    with fresh_postgres_database(postgres_server_url()) as url:
        yield url
