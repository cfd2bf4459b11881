"""Class results on a hand-built class of two students: every number worked out by hand."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import update

from kqv_demo.classroom import class_results, create_class, join_class, results_csv
from kqv_demo.errors import UserInputError
from kqv_demo.quiz import session
from kqv_demo.quiz.rounds import RoundSpec
from kqv_demo.storage import rounds

CLAIMS = ("kl-divergence-compares-queries-and-keys", "keys-are-stored-concept-vectors",
          "softmax-turns-scores-into-attention-distribution")
SPEC = RoundSpec(id="class", title="Three claims", claims=CLAIMS, kinds=("verdict",), count=3, order="bank",
                 feedback="end")


def wrong(item) -> str:
    return next(choice for choice in item.choices if choice != item.answer) if item.choices else "999"


def play(store, bank, code: str, name: str, answers: list[tuple[bool, int]]):
    """A student joins and answers the first len(answers) items: (right?, confidence) each."""
    learner_id, _ = store.learner(store.create_learner(name))
    key = join_class(store, code, learner_id)
    for correct, confidence in answers:
        state = session.load_round(store, bank, key)
        item = state.next_item
        session.submit(store, state, item, item.answer if correct else wrong(item), confidence)
    return learner_id, key


@pytest.fixture
def two_students(store, bank):
    code, _key = create_class(store, bank, SPEC)
    play(store, bank, code, "Ada", [(True, 3), (False, 3), (False, 2)])
    play(store, bank, code, "=HYPERLINK(\"http://evil\")", [(True, 1), (False, 3)])
    return code


def test_participation_accuracy_misconceptions_and_students(store, bank, two_students):
    results = class_results(store, bank, two_students)
    assert (results.joined, results.finished, results.answers) == (2, 1, 5)
    assert [item.claim_id for item in results.items] == sorted(CLAIMS)  # bank order
    accuracy = [(item.answered, item.correct, item.correct_share) for item in results.items]
    assert accuracy == [(2, 2, 1.0), (2, 0, 0.0), (1, 0, 0.0)]  # both right, both wrong and sure, one wrong
    held = [(m.claim_id, m.sure, m.fairly_sure) for m in results.misconceptions]
    assert held == [("kl-divergence-compares-queries-and-keys", 2, 0),
                    ("softmax-turns-scores-into-attention-distribution", 0, 1)]
    assert results.misconceptions[0].claim == bank.claims["kl-divergence-compares-queries-and-keys"].refutation.claim
    ada, other = results.students
    assert (ada.name, ada.answered, ada.correct, ada.cbm_total, ada.cbm_max, ada.finished) == (
        "Ada", 3, 1, 3 - 6 - 2, 9, True)
    assert (other.answered, other.correct, other.cbm_total, other.cbm_max, other.finished) == (2, 1, 1 - 6, 6, False)
    assert ada.calibration_text == "Sure 1/2 · Fairly sure 0/1"
    assert other.calibration_text == "Sure 0/1 · Unsure 1/1"


def test_the_csv_has_one_row_per_student_and_item_and_defuses_formulas(store, bank, two_students):
    table = list(csv.DictReader(io.StringIO(results_csv(class_results(store, bank, two_students)))))
    assert len(table) == 2 * 3
    assert list(table[0]) == ["student", "item_id", "claim_id", "kind", "response", "correct", "confidence",
                              "answered_at"]
    assert [(row["student"], row["item_id"].split(":")[0]) for row in table][:3] == [("Ada", c) for c in sorted(CLAIMS)]
    assert [row["correct"] for row in table] == ["1", "0", "0", "1", "0", ""]
    assert [row["confidence"] for row in table] == ["3", "3", "2", "1", "3", ""]
    unanswered = table[-1]
    assert unanswered["response"] == unanswered["answered_at"] == "" and unanswered["item_id"].endswith(":verdict")
    assert table[3]["student"] == "'=HYPERLINK(\"http://evil\")"
    assert all(row["answered_at"].endswith("Z") for row in table[:5])


def test_a_taken_name_is_refused_and_joining_twice_resumes(store, bank):
    """A second "Sam" is most often Sam again in another browser: refused with the way back (her own link),
    not given a fresh round at 0 and a second row on the dashboard (issue #14, 1)."""
    code, _key = create_class(store, bank, SPEC)
    first_id, first_key = play(store, bank, code, "Sam", [(True, 2)])
    for same in ("Sam", "sAM"):
        with pytest.raises(UserInputError, match="already joined this class round"):
            play(store, bank, code, same, [])
    play(store, bank, code, "Sam K.", [])
    assert join_class(store, code.lower(), first_id) == first_key
    names = [s.name for s in class_results(store, bank, code).students]
    assert names == ["Sam", "Sam K."]


def test_after_the_time_limit_answers_are_refused_and_the_round_closes(store, bank):
    code, _key = create_class(store, bank, SPEC.model_copy(update={"time_limit_minutes": 10}))
    _, key = play(store, bank, code, "Late", [(True, 2)])
    state = session.load_round(store, bank, key)
    assert timedelta(minutes=9) < state.time_left() <= timedelta(minutes=10)
    with store.engine.begin() as connection:  # the learner started 11 minutes ago
        connection.execute(update(rounds).where(rounds.c.key == key)
                           .values(created=state.stored.created - timedelta(minutes=11)))
    late = session.load_round(store, bank, key)
    assert late.finished and late.timed_out and late.next_item is None and late.position == 1
    with pytest.raises(UserInputError, match="Time is up"):
        session.submit(store, state, state.next_item, state.next_item.answer, 2)  # a stale page submitting anyway
    assert len(store.answers(state.stored.id)) == 1
    assert class_results(store, bank, code).students[0].finished


def test_unknown_class_codes_are_a_message(store, bank):
    with pytest.raises(UserInputError, match="There is no class round"):
        class_results(store, bank, "ZZZ-ZZZ-ZZZ")


def test_no_csv_cell_in_any_column_starts_with_a_character_a_spreadsheet_runs(store, bank):
    # the dangerous first characters written out (OWASP's CSV injection list), not read from the module
    dangerous = ("=", "+", "-", "@", "\t", "\r")
    code, _key = create_class(store, bank, SPEC)
    for index, first in enumerate(dangerous):
        play(store, bank, code, f"{first}cmd|' /C calc'!A{index}", [(True, 2)])
    table = list(csv.reader(io.StringIO(results_csv(class_results(store, bank, code)), newline="")))
    cells = [cell for row in table[1:] for cell in row]
    assert len(table) - 1 == len(dangerous) * 3 and cells
    assert [cell for cell in cells if cell.startswith(dangerous)] == []
    names = {row[0] for row in table[1:]}
    assert len(names) == len(dangerous) and all(name.startswith("'") or "cmd" == name[:3] for name in names)
