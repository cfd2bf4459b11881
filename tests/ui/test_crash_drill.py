"""kill -9 of the app server mid-round: what counts as resuming (against a real database), and the drill
itself against a real server on SQLite and on PostgreSQL: 0 acknowledged answers lost, every round resumes."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from kqv_demo.classroom import create_class, join_class
from kqv_demo.content.loader import load_bank
from kqv_demo.quiz.resolve import round_items
from kqv_demo.quiz.rounds import RoundSpec
from kqv_demo.quiz.scheduling import schedule
from kqv_demo.storage import Store
from kqv_demo.ui.crash_drill import DRILL_KINDS, DrillStudent, _resume_problem, run_drill
from kqv_demo.ui.wire_client import Page, Widget


@dataclass
class PlayedRound:
    store: Store
    key: str
    items: list  # the round's items, in order


@pytest.fixture
def played_round(tmp_path) -> PlayedRound:
    """A class round of 5 questions for "Ada", whose first answer is stored."""
    store = Store(f"sqlite:///{tmp_path / 'drill.sqlite3'}")
    bank = load_bank(dialogue=False)
    spec = RoundSpec(id="crash-drill", title="Crash drill", count=5, kinds=DRILL_KINDS)
    code, _key = create_class(store, bank, spec)
    learner_id, _name = store.learner(store.create_learner("Ada"))
    key = join_class(store, code, learner_id)
    stored = store.round(key)
    items = {item.id: item for item in round_items(bank, spec)}
    ordered = [items[item_id] for item_id in stored.item_ids]
    assert store.record_answer(stored, ordered[0].id, ordered[0].claim_id, "x", False, 1, reschedule=schedule)
    yield PlayedRound(store, key, ordered)
    store.engine.dispose()


def reopened(played: PlayedRound, answered: int, question: int, name: str = "Ada") -> Page:
    """The quiz page as the reopened link shows it: the profile, the progress, the question's form."""
    form = f"answer-{played.key}-{played.items[question].id}"
    return Page(texts=[f"Playing as **{name}**.", f"{answered} of {len(played.items)} answered"],
                widgets=[Widget("button", "submit", "Check my answer", form_id=form, is_form_submitter=True)])


def ada(played: PlayedRound, acknowledged: list[str], in_flight: str | None = None) -> DrillStudent:
    return DrillStudent(1, "Ada", random.Random(0), round_key=played.key, acknowledged=acknowledged,
                        answered=len(acknowledged), in_flight=in_flight)


def test_the_round_where_the_student_stopped_is_a_resume(played_round):
    student = ada(played_round, [played_round.items[0].id])
    assert _resume_problem(student, played_round.store, reopened(played_round, 1, 1)) is None


def test_an_answer_on_its_way_that_was_stored_counts_and_is_not_a_failure(played_round):
    student = ada(played_round, [], in_flight=played_round.items[0].id)
    assert _resume_problem(student, played_round.store, reopened(played_round, 1, 1)) is None
    assert student.stored_unacknowledged == [played_round.items[0].id]


@pytest.mark.parametrize("answered,question,name,expected", [
    (0, 0, "Ada", "1 answers accepted or stored"),  # the page starts the round over
    (1, 2, "Ada", "first unanswered question"),  # it skips a question
    (1, 1, "Bob", "does not show the profile"),  # another profile
])
def test_a_link_that_does_not_bring_the_round_back_as_it_was_is_a_failure(played_round, answered, question, name,
                                                                             expected):
    student = ada(played_round, [played_round.items[0].id])
    problem = _resume_problem(student, played_round.store, reopened(played_round, answered, question, name))
    assert problem is not None and expected in problem


def test_a_page_asking_for_a_name_again_is_a_failure(played_round):
    student = ada(played_round, [played_round.items[0].id])
    page = Page(widgets=[Widget("text_input", "name", "Your name or a nickname", form_id="who")])
    assert "did not reopen the round" in _resume_problem(student, played_round.store, page)


def test_an_acknowledged_answer_missing_from_the_database_is_a_failure(played_round):
    student = ada(played_round, [played_round.items[0].id, played_round.items[1].id])
    assert "the database has 1" in _resume_problem(student, played_round.store, reopened(played_round, 2, 2))


@pytest.mark.slow
def test_kill_9_mid_round_three_times_loses_no_acknowledged_answer_and_every_round_resumes(database_url):
    report = run_drill(kills=3, students=4, database_url=database_url, seed=1)
    assert report.errors == 0, report.error_samples
    assert report.kills == 3
    assert report.answers_acknowledged > 0 and report.answers_lost == 0 and report.answers_duplicated == 0
    assert report.resume_failures == 0 and report.resumes == 3 * 4  # every student, after every kill
    assert report.kills_with_answer_in_flight >= 1  # the server died while an answer was on its way
    # what was on its way is either stored (and the page shows it on resume) or not: never counted twice
    assert report.answers_stored == report.answers_acknowledged + report.in_flight_stored
