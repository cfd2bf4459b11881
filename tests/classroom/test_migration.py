"""A database written by schema version 1 (before class rounds) is brought up to version 2 intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kqv_demo.classroom import create_class, join_class
from kqv_demo.quiz.rounds import RoundSpec
from kqv_demo.quiz.session import load_round
from kqv_demo.storage import SCHEMA_VERSION, Store

V1_DUMP = Path(__file__).parent / "fixtures" / "schema_v1.sql"


@pytest.fixture
def v1_database(tmp_path: Path) -> str:
    path = tmp_path / "v1.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.executescript(V1_DUMP.read_text(encoding="utf-8"))
    return f"sqlite:///{path}"


def tables(url: str) -> set[str]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        return {row[0] for row in connection.execute("select name from sqlite_master where type='table'")}


def test_a_version_1_database_migrates_and_keeps_its_progress(v1_database: str, bank):
    assert "classes" not in tables(v1_database)
    store = Store(v1_database)
    assert SCHEMA_VERSION == 2 and store.schema_version() == 2
    assert {"classes", "class_rounds"} <= tables(v1_database)
    learner_id, name = store.learner("thBR3-ldD1F0N8_J")
    assert name == "Old Ada"
    state = load_round(store, bank, "erqpTYfhR5PH")  # its spec was stored before order/feedback/time limit existed
    assert state.position == 1 and state.spec.feedback == "immediate" and state.deadline is None
    assert state.answers["kl-divergence-compares-queries-and-keys:verdict"].confidence == 3

    code, _key = create_class(store, bank, RoundSpec(id="class", title="After the upgrade", count=2,
                                                     claims=("worked-kl-example-gives-0-135",)))
    assert load_round(store, bank, join_class(store, code, learner_id)).spec.title == "After the upgrade"
    store.engine.dispose()
    assert Store(v1_database).schema_version() == 2  # migrating again changes nothing


def test_a_database_from_a_newer_version_is_refused(v1_database: str):
    with sqlite3.connect(v1_database.removeprefix("sqlite:///")) as connection:
        connection.execute("update schema_version set version = 99")
    with pytest.raises(RuntimeError, match="newer KQV Tutor"):
        Store(v1_database)
