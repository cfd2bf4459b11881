"""Who may play a class round, and when: a cap on joins that holds under a flood, joining closed by the
instructor, removed students (out of the results and the CSV, and they cannot come back), and a round
that starts when the instructor says so, its time limit counting from each student's start."""

from __future__ import annotations

import csv
import io
import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from kqv_demo.classroom import (
    admission, class_results, create_class, join_class, remove_student, results_csv, set_joining, start_class,
)
from kqv_demo.errors import UserInputError
from kqv_demo.quiz import session
from kqv_demo.quiz.rounds import RoundSpec
from kqv_demo.quiz.scheduling import schedule
from kqv_demo.storage import Store, rounds

SPEC = RoundSpec(id="class", title="Admission", kinds=("verdict",), count=2, order="bank", feedback="end",
                 claims=("kl-divergence-compares-queries-and-keys", "keys-are-stored-concept-vectors"))


def new_student(store: Store, name: str) -> int:
    return store.learner(store.create_learner(name))[0]


def test_a_full_class_refuses_newcomers_but_not_its_members(store, bank):
    code, _key = create_class(store, bank, SPEC, max_students=3)
    members = [new_student(store, f"S{n}") for n in range(3)]
    keys = [join_class(store, code, learner_id) for learner_id in members]
    with pytest.raises(UserInputError, match=r"full \(3 students\)"):
        join_class(store, code, new_student(store, "Fourth"))
    assert join_class(store, code, members[0]) == keys[0], "a member resumes even when the class is full"
    assert class_results(store, bank, code).joined == 3
    with pytest.raises(UserInputError, match="1 to 2000 students"):
        create_class(store, bank, SPEC, max_students=0)


def test_the_cap_holds_when_many_join_at_the_same_moment(store, bank):
    """40 students joining at once, 10 places: exactly 10 get in, the others get the plain refusal."""
    code, _key = create_class(store, bank, SPEC, max_students=10)
    students = [new_student(store, f"Flood {n}") for n in range(40)]
    barrier, outcomes = threading.Barrier(len(students)), []

    def join(learner_id: int) -> None:
        barrier.wait()
        try:
            join_class(store, code, learner_id)
            outcomes.append("joined")
        except UserInputError as refusal:
            outcomes.append("full" if "is full" in str(refusal) else str(refusal))
        except Exception as error:  # noqa: BLE001 - counted as what it is
            outcomes.append(repr(error))

    threads = [threading.Thread(target=join, args=(learner_id,)) for learner_id in students]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["full"] * 30 + ["joined"] * 10, sorted(set(outcomes))
    assert class_results(store, bank, code).joined == 10


def test_closed_joining_keeps_the_class_in_and_newcomers_out(store, bank):
    code, _key = create_class(store, bank, SPEC)
    inside = new_student(store, "Inside")
    key = join_class(store, code, inside)
    set_joining(store, code, False)
    assert not store.class_by_code(code).joining_open
    with pytest.raises(UserInputError, match="Joining this class round is closed"):
        join_class(store, code, new_student(store, "Late"))
    assert join_class(store, code, inside) == key
    set_joining(store, code, True)
    join_class(store, code, new_student(store, "Later"))
    assert class_results(store, bank, code).joined == 2


def play(store, bank, key: str, right: bool) -> None:
    state = session.load_round(store, bank, key)
    item = state.next_item
    session.submit(store, state, item, item.answer if right else next(c for c in item.choices if c != item.answer), 3)


def test_a_removed_student_leaves_the_results_and_the_csv_and_cannot_come_back(store, bank):
    code, _key = create_class(store, bank, SPEC)
    stays, spammer = new_student(store, "Stays"), new_student(store, "=cmd|' /C calc'!A0")
    stays_key, spam_key = join_class(store, code, stays), join_class(store, code, spammer)
    play(store, bank, stays_key, right=True)
    play(store, bank, spam_key, right=False)
    before = class_results(store, bank, code)
    assert (before.joined, before.answers) == (2, 2)
    removed_round = next(s.round_id for s in before.students if s.name.startswith("=cmd"))

    assert remove_student(store, code, removed_round) and not remove_student(store, code, removed_round)
    after = class_results(store, bank, code)
    assert [s.name for s in after.students] == ["Stays"] and after.answers == 1
    assert [(i.answered, i.correct) for i in after.items] == [(1, 1), (0, 0)], "their answers leave the numbers"
    assert after.misconceptions == (), "their confident wrong answer is no longer counted"
    assert {row["student"] for row in csv.DictReader(io.StringIO(results_csv(after)))} == {"Stays"}

    assert admission(store, removed_round).removed is not None
    assert admission(store, store.round(stays_key).id).removed is None
    with pytest.raises(UserInputError, match="removed you"):
        join_class(store, code, spammer)
    state = session.load_round(store, bank, spam_key)
    assert state.next_item is None, "their round is closed"
    with pytest.raises(UserInputError, match="round is closed"):
        store.record_answer(state.stored, state.items[1].id, state.items[1].claim_id, "false", False, 1,
                            reschedule=schedule)


def test_a_round_that_waits_for_the_instructor_then_counts_time_from_each_start(store, bank):
    timed = SPEC.model_copy(update={"time_limit_minutes": 10})
    code, _key = create_class(store, bank, timed, wait_for_start=True)
    early_key = join_class(store, code, new_student(store, "Early"))
    early = store.round(early_key)
    assert admission(store, early.id).stored_class.waiting
    with store.engine.begin() as connection:  # joined half an hour before the class began
        connection.execute(update(rounds).where(rounds.c.id == early.id)
                           .values(created=early.created - timedelta(minutes=30)))
    with pytest.raises(UserInputError, match="not started this class round yet"):
        store.record_answer(early, early.item_ids[0], early.item_ids[0].split(":")[0], "false", True, 2,
                            reschedule=schedule)

    assert start_class(store, code) and not start_class(store, code)
    assert not admission(store, early.id).stored_class.waiting
    state = session.load_round(store, bank, early_key)
    assert timedelta(minutes=9) < state.time_left() <= timedelta(minutes=10), "from the start, not from joining"
    play(store, bank, early_key, right=True)

    late_key = join_class(store, code, new_student(store, "Late"))
    late = session.load_round(store, bank, late_key)
    assert timedelta(minutes=9) < late.time_left() <= timedelta(minutes=10)
    assert late.stored.created > state.stored.created, "a student who joins later starts when they join"


def test_a_round_created_without_waiting_starts_at_once(store, bank):
    code, _key = create_class(store, bank, SPEC)
    key = join_class(store, code, new_student(store, "Now"))
    assert not admission(store, store.round(key).id).stored_class.waiting
    assert not start_class(store, code)
    play(store, bank, key, right=True)
    learner_id = new_student(store, "Own round")
    own = store.round(store.start_round(learner_id, {}, ["a:verdict"]))
    assert admission(store, own.id) is None
