"""The Quiz and Instructor pages when the progress database cannot be written (read-only, full) or cannot be
opened at all: a plain message, never a traceback; an answer that was not saved is said to be NOT saved and
can be given again; the demos, the claims and the exports keep working."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kqv_demo import storage
from kqv_demo.classroom import create_class, join_class
from kqv_demo.content.loader import load_bank
from kqv_demo.quiz import session
from kqv_demo.quiz.rounds import BUILT_IN
from kqv_demo.quiz.scheduling import schedule
from kqv_demo.storage import AnswerNotSaved, Store
from kqv_demo.ui.navigation import PAGES
from tests.test_storage import no_room_left, read_only
from tests.ui.markdown_text import plain

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def page(name: str, **query: str) -> AppTest:
    test = AppTest.from_file(APP, default_timeout=90)
    test.run()
    test.switch_page(PAGES[name].path)
    for key, value in query.items():
        test.query_params[key] = value
    test.run()
    assert not test.exception, test.exception
    return test


def shown(test: AppTest) -> str:
    return plain(" ".join(e.value for kind in ("markdown", "caption", "info", "warning", "error", "success")
                          for e in test.get(kind)))


def learner_with_a_round(url: str, spec_id: str = "core-10") -> tuple[str, str]:
    store = Store(url)
    learner_key = store.create_learner("Ada")
    learner_id, _ = store.learner(learner_key)
    round_key = session.start_round(store, load_bank(), learner_id, BUILT_IN[spec_id])
    store.engine.dispose()
    return learner_key, round_key


def answer_first_question(test: AppTest, url: str) -> None:
    state = session.load_round(Store(url), load_bank(), test.query_params["r"])
    test.radio[0].set_value(state.next_item.answer)
    test.radio[1].set_value(2)
    next(b for b in test.button if b.label == "Check my answer").click().run()
    assert not test.exception, test.exception


def answers_stored(url: str, round_key: str) -> int:
    store = Store(url)
    return len(store.answers(store.round(round_key).id))


def test_a_read_only_database_tells_the_learner_the_answer_was_not_saved(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'progress.sqlite3'}"
    learner_key, round_key = learner_with_a_round(url)
    monkeypatch.setenv("DATABASE_URL", read_only(url))
    test = page("quiz", learner=learner_key, r=round_key)
    assert "Playing as **Ada**" in shown(test), "a read-only database still opens the round"
    answer_first_question(test, url)
    assert "Your answer was NOT saved: the server's database is read-only" in plain(test.error[0].value)
    assert answers_stored(url, round_key) == 0
    assert test.radio[1].value == 2 and any(b.label == "Check my answer" for b in test.button), "kept to try again"

    monkeypatch.setenv("DATABASE_URL", url)  # the person running the server fixes it
    next(b for b in test.button if b.label == "Check my answer").click().run()
    assert not test.exception and "Right" in test.success[0].value
    assert answers_stored(url, round_key) == 1


def test_a_full_disk_tells_the_learner_the_answer_was_not_saved(tmp_path: Path, monkeypatch):
    """A database with no page left, filled to the last byte by answers of an earlier round (whose index
    entries come before this round's, so this round's answer needs room where there is none)."""
    url = f"sqlite:///{tmp_path / 'full.sqlite3'}"
    store = Store(url)
    learner_id, _ = store.learner(store.create_learner("Padding"))
    padding = store.round(store.start_round(learner_id, {}, [f"p{n}:verdict" for n in range(2000)]))
    store.engine.dispose()
    learner_key, round_key = learner_with_a_round(url)
    monkeypatch.setattr(storage, "_sqlite_connect", no_room_left(storage._sqlite_connect))
    filler = Store(url)
    with pytest.raises(AnswerNotSaved):
        for item_id in padding.item_ids:
            filler.record_answer(padding, item_id, item_id.split(":")[0], "x", True, 1, reschedule=schedule)
    filler.engine.dispose()

    monkeypatch.setenv("DATABASE_URL", url)
    test = page("quiz", learner=learner_key, r=round_key)
    answer_first_question(test, url)
    assert "Your answer was NOT saved: the server's database is full" in plain(test.error[0].value)
    assert answers_stored(url, round_key) == 0 and any(b.label == "Check my answer" for b in test.button)


def test_a_database_that_cannot_be_opened_leaves_the_rest_of_the_app_working(tmp_path: Path, monkeypatch):
    empty = tmp_path / "never-created.sqlite3"
    empty.touch()
    monkeypatch.setenv("DATABASE_URL", read_only(f"sqlite:///{empty}"))  # cannot even create its tables
    quiz = page("quiz")
    assert "the server's database is read-only" in plain(quiz.error[0].value)
    assert "Demo lab, the Claims and Ask still work" in plain(quiz.error[0].value)
    assert not quiz.text_input, "no name form that could not be saved"

    instructor = page("instructor")
    assert "the server's database is read-only" in plain(instructor.error[0].value)
    assert [tab.label for tab in instructor.tabs] == ["New round", "Class results", "Export"]
    assert "not available right now" in shown(instructor)
    assert next(box for box in instructor.selectbox if box.label == "Round to export").value == "core-10"

    claims = page("claims")
    assert not claims.error and claims.title[0].value


def test_the_instructor_is_told_when_a_class_round_cannot_be_created(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'progress.sqlite3'}"
    Store(url).engine.dispose()
    monkeypatch.setenv("DATABASE_URL", read_only(url))
    test = page("instructor")
    next(w for w in test.radio if w.label == "Build the round from").set_value("A round file").run()
    next(b for b in test.button if b.label == "Create the class round").click().run()
    assert not test.exception, test.exception
    assert "the server's database is read-only" in plain(test.error[0].value)
    assert not any(m.value.startswith("# ") for m in test.markdown), "no code shown for a round that was not stored"


def test_the_dashboard_reads_a_read_only_database_and_says_why_a_control_did_nothing(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'progress.sqlite3'}"
    store = Store(url)
    code, key = create_class(store, load_bank(dialogue=False), BUILT_IN["core-10"])
    join_class(store, code, store.learner(store.create_learner("Ada"))[0])
    store.engine.dispose()
    monkeypatch.setenv("DATABASE_URL", read_only(url))
    test = page("instructor")
    next(w for w in test.text_input if w.label == "Round code").set_value(code)
    next(w for w in test.text_input if w.label == "Instructor key").set_value(key)
    next(b for b in test.button if b.label == "Show the results").click().run()
    assert {m.label: m.value for m in test.metric}["Joined"] == "1", "results are read as usual"
    next(b for b in test.button if b.label == "Close joining").click().run()
    assert not test.exception, test.exception
    assert "the server's database is read-only" in plain(test.error[0].value)
    assert "Joining is open" in shown(test) and Store(url).class_by_code(code).joining_open
