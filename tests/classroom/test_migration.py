"""Databases of the numbered schema (version 1, before class rounds; version 2, before named migrations)
are adopted and brought up to date intact, once; a database from a newer app is refused, and an app from
before named migrations refuses a migrated database."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, insert, inspect, select

from kqv_demo.classroom import class_results, create_class, join_class, start_class
from kqv_demo.quiz import session
from kqv_demo.quiz.rounds import RoundSpec
from kqv_demo.quiz.session import load_round
from kqv_demo.storage import (
    LEGACY_VERSION_MARK, MIGRATIONS, Store, StorageUnavailable, metadata, migrations, schema_version,
)
from tests.classroom import legacy_schema

V1_DUMP = Path(__file__).parent / "fixtures" / "schema_v1.sql"
ALL_MIGRATIONS = [migration.name for migration in MIGRATIONS]


@pytest.fixture
def v1_database(tmp_path: Path) -> str:
    path = tmp_path / "v1.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.executescript(V1_DUMP.read_text(encoding="utf-8"))
    return f"sqlite:///{path}"


def columns(url: str) -> dict[str, set[str]]:
    engine = create_engine(url)
    try:
        found = inspect(engine)
        return {table: {column["name"] for column in found.get_columns(table)} for table in found.get_table_names()}
    finally:
        engine.dispose()


def legacy_versions(store: Store) -> list[int]:
    with store.engine.connect() as connection:
        return list(connection.execute(select(schema_version.c.version)).scalars())


def test_a_version_1_database_migrates_and_keeps_its_progress(v1_database: str, bank):
    assert "classes" not in columns(v1_database)
    store = Store(v1_database)
    assert store.applied_migrations() == ALL_MIGRATIONS
    assert columns(v1_database) == {table.name: set(table.columns.keys()) for table in metadata.sorted_tables}
    learner_id, name = store.learner("thBR3-ldD1F0N8_J")
    assert name == "Old Ada"
    state = load_round(store, bank, "erqpTYfhR5PH")  # its spec was stored before order/feedback/time limit existed
    assert state.position == 1 and state.spec.feedback == "immediate" and state.deadline is None
    assert state.answers["kl-divergence-compares-queries-and-keys:verdict"].confidence == 3

    code, _key = create_class(store, bank, RoundSpec(id="class", title="After the upgrade", count=2,
                                                     claims=("worked-kl-example-gives-0-135",)))
    assert load_round(store, bank, join_class(store, code, learner_id)).spec.title == "After the upgrade"
    store.engine.dispose()
    again = Store(v1_database)
    assert again.applied_migrations() == ALL_MIGRATIONS and legacy_versions(again) == [LEGACY_VERSION_MARK]


def test_a_version_2_database_with_a_class_migrates_on_both_databases(database_url: str, bank):
    legacy_schema.write_v2_database(database_url)
    store = Store(database_url)
    assert store.applied_migrations() == ALL_MIGRATIONS
    assert legacy_versions(store) == [LEGACY_VERSION_MARK]  # the duplicate rows of the old race are gone
    stored = store.class_by_code(legacy_schema.CLASS_CODE)
    assert stored.started == stored.created and stored.joining_open and stored.max_students == 300
    assert not start_class(store, stored.code), "a class of schema 2 could always be played: it counts as started"

    learner_id, name = store.learner(legacy_schema.LEARNER_KEY)
    assert name == "Old Bo" and join_class(store, stored.code, learner_id) == legacy_schema.ROUND_KEY
    state = load_round(store, bank, legacy_schema.ROUND_KEY)
    assert state.position == 1 and state.next_item.id == legacy_schema.ITEMS[1]
    session.submit(store, state, state.next_item, state.next_item.answer, 2)
    results = class_results(store, bank, stored.code)
    assert [(s.name, s.answered, s.finished) for s in results.students] == [("Old Bo", 2, True)]
    assert {card.claim_id: card.box for card in store.cards(learner_id)} == {
        "kl-divergence-compares-queries-and-keys": 2, "softmax-turns-scores-into-attention-distribution": 2}


def test_a_fresh_database_and_a_migrated_one_have_the_same_tables(database_url: str, tmp_path: Path):
    Store(database_url).engine.dispose()
    old = f"sqlite:///{tmp_path / 'v2.sqlite3'}"
    legacy_schema.write_v2_database(old)
    Store(old).engine.dispose()
    expected = {table.name: set(table.columns.keys()) for table in metadata.sorted_tables}
    assert columns(database_url) == expected and columns(old) == expected


def test_a_database_from_a_newer_version_is_refused(database_url: str):
    store = Store(database_url)
    with store.engine.begin() as connection:
        connection.execute(insert(migrations).values(name="0099-from-the-future", applied=datetime(2030, 1, 1)))
    store.engine.dispose()
    with pytest.raises(StorageUnavailable, match="newer KQV Tutor .*0099-from-the-future"):
        Store(database_url)


def test_a_numbered_database_from_a_newer_version_is_refused(v1_database: str):
    with sqlite3.connect(v1_database.removeprefix("sqlite:///")) as connection:
        connection.execute("update schema_version set version = 99")
    with pytest.raises(StorageUnavailable, match=r"newer KQV Tutor \(schema 99\)"):
        Store(v1_database)


def test_an_app_of_schema_2_refuses_a_migrated_database(database_url: str):
    """What c88a4f9's Store.migrate did on start: it must stop rather than write to tables it does not know."""
    store = Store(database_url)
    with store.engine.begin() as connection:
        version = connection.execute(select(schema_version.c.version)).scalar()
        assert version > 2, "schema 2's check `version > SCHEMA_VERSION` must refuse this database"
        connection.execute(delete(schema_version))
    store.engine.dispose()
    assert Store(database_url).applied_migrations() == ALL_MIGRATIONS  # migrations, not the marker, decide
