"""The Quiz page, played through its widgets: a whole round, feedback, summary, resume after restart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kqv_demo.content.loader import load_bank
from kqv_demo.quiz.items import check
from kqv_demo.quiz.session import load_round
from kqv_demo.storage import Store
from tests.ui.markdown_text import plain

APP = str(Path(__file__).resolve().parents[2] / "app.py")
QUIZ = "kqv_demo/ui/pages/quiz.py"


@pytest.fixture
def database(tmp_path: Path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'quiz.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def quiz(**query: str) -> AppTest:
    test = AppTest.from_file(APP, default_timeout=60)
    test.run()
    test.switch_page(QUIZ)
    for key, value in query.items():
        test.query_params[key] = value
    test.run()
    assert not test.exception, test.exception
    return test


def sign_in(name: str = "Ada") -> AppTest:
    test = quiz()
    test.text_input[0].set_value(name)
    test.button[0].click().run()
    assert not test.exception
    return test


def current_item(test: AppTest, url: str):
    state = load_round(Store(url), load_bank(), test.query_params["r"])
    return state, state.next_item


def answer(test: AppTest, response: str, confidence: int) -> None:
    if test.radio[0].label == "Your answer":
        test.radio[0].set_value(response)
        test.radio[1].set_value(confidence)
    else:
        test.text_input[0].set_value(response)
        test.radio[0].set_value(confidence)
    next(b for b in test.button if b.label == "Check my answer").click().run()
    assert not test.exception, test.exception


def go_on(test: AppTest) -> None:
    next(b for b in test.button if b.label in ("Next question", "See my results")).click().run()


def test_a_whole_round_with_feedback_and_summary(database: str):
    test = sign_in()
    test.button(key="start-core-10").click().run()
    store, bank = Store(database), load_bank()
    right = wrong_and_sure = 0
    for index in range(10):
        state, item = current_item(test, database)
        assert item is not None
        if index % 3 == 0:  # answer wrongly, and be sure about it
            if item.choices:
                response = next(c for c in item.choices if c != item.answer)
            else:  # a numeric item: well outside its tolerance
                response = str(float(item.answer) + 2 * item.tolerance + 1)
            answer(test, response, 3)
            assert "Not quite" in test.error[0].value
            assert "most valuable kind of mistake" in test.warning[0].value
            wrong_and_sure += 1
        else:
            answer(test, item.answer, 2)
            assert "Right" in test.success[0].value
            right += 1
        assert check(item, item.answer).correct
        assert any(bank.claims[item.claim_id].refutation.verdict in m.value for m in test.markdown), "refutation shown"
        go_on(test)
    metrics = {m.label: m.value for m in test.metric}
    assert metrics["Score"] == f"{right} / 10"
    assert metrics["Certainty-based score"] == f"{2 * right - 6 * wrong_and_sure} / 30"
    assert "Misconceptions you held with confidence" in " ".join(m.value for m in test.markdown)
    finished, _ = current_item(test, database)
    assert finished.finished and store.round(finished.stored.key).finished is not None
    held = finished.summary().confident_errors
    assert len(held) == wrong_and_sure
    next(b for b in test.button if b.label == "Review these now").click().run()
    review, item = current_item(test, database)
    assert review.stored.key != finished.stored.key
    assert set(review.spec.claims) == set(held) and {i.claim_id for i in review.items} == set(held)


def test_progress_survives_a_server_restart(database: str):
    test = sign_in("Bo")
    test.button(key="start-kl-and-dot-products").click().run()
    state, item = current_item(test, database)
    answer(test, item.choices[0] if item.choices else "0.1", 1)
    go_on(test)
    learner, round_key = test.query_params["learner"], test.query_params["r"]

    restarted = quiz(learner=learner, r=round_key)  # a fresh app: nothing in memory
    state, item = current_item(restarted, database)
    assert state.position == 1 and item is not None
    assert "1 of" in restarted.get("progress")[0].proto.text


def test_double_submission_is_stored_once(database: str):
    test = sign_in()
    test.button(key="start-core-10").click().run()
    state, item = current_item(test, database)
    answer(test, item.answer, 2)
    store = Store(database)
    from kqv_demo.quiz.session import submit

    checked, stored = submit(store, state, item, item.answer, 2)  # the same answer arriving again
    assert stored is False and checked.correct
    assert len(store.answers(state.stored.id)) == 1


def test_answer_needs_a_choice_and_a_confidence(database: str):
    test = sign_in()
    test.button(key="start-core-10").click().run()
    next(b for b in test.button if b.label == "Check my answer").click().run()
    assert "Choose an answer first" in test.error[0].value
    state, item = current_item(test, database)
    test.radio[0].set_value(item.choices[0])
    next(b for b in test.button if b.label == "Check my answer").click().run()
    assert "how sure you are" in test.error[0].value
    assert current_item(test, database)[0].position == 0


@pytest.mark.parametrize("name,message", [("", "enter a name"), ("   ", "enter a name")])
def test_empty_names_are_refused_kindly(database: str, name: str, message: str):
    test = quiz()
    test.text_input[0].set_value(name)
    test.button[0].click().run()
    assert message in test.error[0].value and "learner" not in test.query_params


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "Zoë 🙂 李", "x" * 10_000])
def test_odd_names_are_kept_safe(database: str, name: str):
    test = quiz()
    test.text_input[0].set_value(name[:80])
    test.button[0].click().run()
    assert not test.exception
    greeting = next(m.value for m in test.markdown if m.value.startswith("Hello"))
    assert name[:80] in plain(greeting)  # shown as typed: escaped, so neither HTML nor Markdown


def test_round_links_reproduce_rounds_and_bad_links_explain(database: str):
    test = sign_in()
    learner = test.query_params["learner"]
    linked = quiz(learner=learner, round="kl-and-dot-products", seed="42")
    assert "kl-and-dot-products" not in " ".join(e.value for e in linked.error)
    assert "KL and dot products" in linked.info[0].value
    next(b for b in linked.button if b.label == "Start this round").click().run()
    first, _ = current_item(linked, database)
    again = quiz(learner=learner, round="kl-and-dot-products", seed="42")
    next(b for b in again.button if b.label == "Start this round").click().run()
    second, _ = current_item(again, database)
    assert first.stored.item_ids == second.stored.item_ids and first.stored.key != second.stored.key
    assert "no round called 'nope'" in plain(quiz(learner=learner, round="nope").error[0].value)
    assert "whole number" in plain(quiz(learner=learner, round="core-10", seed="abc").error[0].value)
    assert "unknown or has expired" in plain(quiz(learner=learner, r="not-a-round").warning[0].value)


def test_an_unknown_profile_link_starts_fresh(database: str):
    test = quiz(learner="no-such-learner")
    assert "unknown" in test.warning[0].value and test.text_input[0].label.startswith("Your name")


def test_a_prediction_runs_the_real_model_and_reveals_it(database: str, runtime):
    test = sign_in()
    test.button(key="start-see-it-happen").click().run()
    state, item = current_item(test, database)
    assert item.kind == "predict"
    answer(test, item.choices[-1], 2)
    shown = " ".join(e.value for e in test.success) + " ".join(e.value for e in test.error)
    assert "You predicted it" in shown or "the model showed" in shown
    assert any(m.value.startswith("#### Live:") for m in test.markdown), "the live demo is shown"
    assert len(test.metric) >= 2, "with its numbers"
    state, _ = current_item(test, database)
    assert state.position == 1 and next(iter(state.answers.values())).item_id == item.id


def _caught_failures(test: AppTest) -> list[str]:
    """Errors the page caught itself ("it is our fault"): `test.exception` does not list them."""
    return [error.value for error in test.error if "it is our fault" in error.value]


def test_the_common_misconceptions_round_shows_where_learners_say_it(database: str):
    from kqv_demo.claim_source import addresses

    test = sign_in()
    test.button(key="start-common-misconceptions").click().run()
    state, item = current_item(test, database)
    bank = load_bank()
    assert len(state.items) == 10 and all(bank.claims[i.claim_id].origin == "public" for i in state.items)
    answer(test, item.choices[0] if item.choices else "1", 2)
    assert not _caught_failures(test)
    text = " ".join(m.value for m in test.markdown)
    assert "**Where learners say it:**" in text and "of the dialogue" not in text and "None" not in text
    external = [link.proto.page for link in test.get("page_link") if link.proto.external]
    assert external == addresses(bank.claims[item.claim_id])


def test_a_custom_round_draws_from_the_chosen_source(database: str):
    test = sign_in()
    next(radio for radio in test.radio if radio.label == "Claims from").set_value("dialogue")
    test.number_input[0].set_value(30)
    next(b for b in test.button if b.label == "Start my round").click().run()
    assert not test.exception and not _caught_failures(test)
    state, _ = current_item(test, database)
    bank = load_bank()
    assert len(state.items) == 30 and {bank.claims[i.claim_id].origin for i in state.items} == {"dialogue"}


PAYLOAD = "[prize](https://evil.example) ![x](https://t.example/p.png) **bold** :red[red]"


@pytest.mark.parametrize("query", [{"class": PAYLOAD}, {"round": PAYLOAD}, {"round": "core-10", "seed": PAYLOAD},
                                   {"class": "K7P-QX4-MRT"}])
def test_link_parameters_are_quoted_back_as_typed_never_as_links(database: str, query: dict[str, str]):
    learner = sign_in().query_params["learner"]
    test = quiz(learner=learner, **query)
    said = [e.value for kind in ("error", "warning", "info", "markdown", "caption") for e in test.get(kind)]
    unescaped = re.sub(r"\\.", "", " ".join(said))  # what Markdown would still read as syntax
    assert "](" not in unescaped and "**bold**" not in unescaped and ":red[" not in unescaped
    assert any(word in plain(" ".join(said)) for word in ("[prize]", "no class round K7P-QX4-MRT")), said
