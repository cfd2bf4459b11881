"""In CI the PostgreSQL variants must run: without a server they fail, they are not skipped (a green CI that
never ran them would be a lie); on a developer's machine without one they are skipped."""

from __future__ import annotations

import pytest

from tests.conftest import POSTGRES_VARIABLE, postgres_server_url


def test_without_a_server_the_postgresql_tests_fail_in_ci(monkeypatch):
    monkeypatch.delenv(POSTGRES_VARIABLE, raising=False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL tests cannot run in CI"):
        postgres_server_url()


def test_without_a_server_the_postgresql_tests_are_skipped_on_a_developers_machine(monkeypatch):
    monkeypatch.delenv(POSTGRES_VARIABLE, raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="KQV_TEST_DATABASE_URL is not set"):
        postgres_server_url()


def test_with_a_server_its_url_is_used(monkeypatch):
    monkeypatch.setenv(POSTGRES_VARIABLE, "postgresql+psycopg://kqv@127.0.0.1:5999/kqv_test")
    monkeypatch.setenv("CI", "true")
    assert postgres_server_url() == "postgresql+psycopg://kqv@127.0.0.1:5999/kqv_test"
