"""Storage: answers written once, rounds resumable after a restart, review cards scheduled."""

from __future__ import annotations

from pathlib import Path

import pytest

from kqv_demo.errors import UserInputError
from kqv_demo.storage import MAX_NAME, Store, clean_name


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'progress.sqlite3'}"


def test_a_round_survives_a_restart(url: str):
    store = Store(url)
    learner_key = store.create_learner("Ada")
    learner_id, name = store.learner(learner_key)
    round_key = store.start_round(learner_id, {"id": "core-10", "seed": 3}, ["a:verdict", "b:verdict"])
    stored = store.round(round_key)
    assert store.record_answer(stored, "a:verdict", "a", "false", False, 3)
    store.engine.dispose()

    reopened = Store(url)  # a new process would do exactly this
    assert reopened.learner(learner_key) == (learner_id, "Ada")
    again = reopened.round(round_key)
    assert again.item_ids == ["a:verdict", "b:verdict"] and again.spec == {"id": "core-10", "seed": 3}
    assert [(a.item_id, a.correct, a.confidence) for a in reopened.answers(again.id)] == [("a:verdict", False, 3)]
    assert [r.key for r in reopened.open_rounds(learner_id)] == [round_key]
    reopened.finish_round(again.id)
    assert reopened.open_rounds(learner_id) == []


def test_the_same_answer_is_stored_once(url: str):
    store = Store(url)
    learner_id, _ = store.learner(store.create_learner("Bo"))
    stored = store.round(store.start_round(learner_id, {}, ["a:verdict"]))
    assert store.record_answer(stored, "a:verdict", "a", "true", True, 2) is True
    assert store.record_answer(stored, "a:verdict", "a", "false", False, 3) is False
    assert [(a.response, a.correct) for a in store.answers(stored.id)] == [("true", True)]
    with pytest.raises(UserInputError):
        store.record_answer(stored, "zzz:verdict", "zzz", "true", True, 2)


def test_answers_schedule_review_cards(url: str):
    store = Store(url)
    learner_id, _ = store.learner(store.create_learner("Cy"))
    stored = store.round(store.start_round(learner_id, {}, ["a:verdict", "a:multiple_choice", "b:verdict"]))
    store.record_answer(stored, "a:verdict", "a", "true", False, 3)
    store.record_answer(stored, "b:verdict", "b", "false", True, 3)
    store.record_answer(stored, "a:multiple_choice", "a", "x", True, 3)
    boxes = {card.claim_id: card.box for card in store.cards(learner_id)}
    assert boxes == {"a": 2, "b": 2}


@pytest.mark.parametrize("raw,expected", [
    ("  Ada  ", "Ada"), ("<b>Ada</b>", "<b>Ada</b>"), ("Zoë 🙂", "Zoë 🙂"), ("a\x00b\x07c", "abc"),
])
def test_names_are_cleaned_not_rejected(raw: str, expected: str):
    assert clean_name(raw) == expected


def test_empty_and_huge_names(url: str):
    with pytest.raises(UserInputError, match="enter a name"):
        clean_name(" \n\t ")
    store = Store(url)
    learner_id, name = store.learner(store.create_learner("x" * 10_000))
    assert len(name) == MAX_NAME


def test_unknown_keys_find_nothing(url: str):
    store = Store(url)
    assert store.learner("nope") is None and store.round("nope") is None
