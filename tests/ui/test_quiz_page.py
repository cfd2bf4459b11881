"""The Quiz page, played through its widgets: a whole round, feedback, summary, resume after restart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kqv_demo.content.loader import load_bank
from kqv_demo.quiz.items import check, format_number
from kqv_demo.quiz.predict import PREDICTIONS_BY_ITEM
from kqv_demo.quiz.session import load_round
from kqv_demo.storage import Store
from kqv_demo.ui.navigation import PAGES
from tests.ui.markdown_text import plain

APP = str(Path(__file__).resolve().parents[2] / "app.py")
QUIZ = PAGES["quiz"].path


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
        if item.kind == "verdict":  # its explanation once, not twice (issue #14, 8)
            assert sum(m.value.strip() == item.explanation.strip() for m in test.markdown) == 1, item.id
        assert any(bank.claims[item.claim_id].refutation.verdict in m.value for m in test.markdown), "refutation shown"
        go_on(test)
    metrics = {m.label: m.value for m in test.metric}
    assert metrics["Score"] == f"{right} / 10"
    assert metrics["Certainty-based score"] == f"{2 * right - 6 * wrong_and_sure} / 30"
    shown = " ".join(m.value for m in test.markdown)
    assert "Misconceptions you held with confidence" in shown
    assert shown.count("./claims?claim=") == wrong_and_sure  # a list that wraps, each with its claim's link
    assert "over-confident" in shown  # sure and wrong 4 times of 4: said in words, not only in a chart
    calibration = test.table[0].value
    # unsure never used: "no answers", not a 0 that reads as "always wrong"; percentages, not 0.6667
    assert list(calibration["right"]) == ["no answers", f"{right} of {right} (100%)", f"0 of {wrong_and_sure} (0%)"]
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
    # the choices as the round's seed shuffled them (not the taught answer first), as a resumed round has them
    assert test.radio[0].options == list(item.choices)
    assert item.choices == PREDICTIONS_BY_ITEM[item.id].item(state.spec.seed).choices
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


def test_a_numeric_question_states_its_tolerance_and_refuses_a_non_number(database: str):
    """Issue #14, 3: the accepted tolerance is shown with the question, before answering; "abc" is refused
    with a message and not scored (no confidence penalty), and the question stays open."""
    learner = sign_in().query_params["learner"]
    test = quiz(learner=learner, round="custom", kinds="numeric", count="2")
    next(b for b in test.button if b.label == "Start this round").click().run()
    state, item = current_item(test, database)
    assert item.kind == "numeric"
    assert any(f"±{format_number(item.tolerance)}" in plain(c.value) for c in test.caption), "tolerance shown first"
    answer(test, "abc", 3)
    assert any("is not a number" in plain(e.value) for e in test.error)
    state, still = current_item(test, database)
    assert still.id == item.id and state.answers == {}  # nothing scored or stored
    answer(test, item.answer.replace(".", ","), 2)  # a decimal comma is read, and the reading said
    assert "Right" in test.success[0].value
    assert any("was read as" in plain(m.value) for m in test.markdown)


def test_a_spot_the_error_question_says_which_document_it_quotes(database: str):
    learner = sign_in().query_params["learner"]
    test = quiz(learner=learner, round="custom", kinds="spot_the_error", claims="slides-are-about-nosql-databases",
                count="1")
    next(b for b in test.button if b.label == "Start this round").click().run()
    _, item = current_item(test, database)
    shown = [plain(m.value) for m in test.markdown]
    lead = next(index for index, text in enumerate(shown) if "Understanding keys, queries & values" in text)
    quote = next(index for index, text in enumerate(shown) if "NoSQL databases" in text and index != lead)
    assert item.kind == "spot_the_error" and lead < quote


def test_the_progress_link_lists_finished_rounds_with_their_scores(database: str):
    learner = sign_in().query_params["learner"]
    test = quiz(learner=learner, round="custom", kinds="verdict", count="1")
    next(b for b in test.button if b.label == "Start this round").click().run()
    _, item = current_item(test, database)
    answer(test, item.answer, 2)
    go_on(test)
    next(b for b in test.button if b.label == "Choose another round").click().run()
    again = quiz(learner=learner)  # the bookmarked progress link, opened later
    assert any(e.label.startswith("Your finished rounds") for e in again.expander)
    listed = [b.label for b in again.button if b.key and b.key.startswith("results-")]
    assert len(listed) == 1 and "1 of 1 right" in listed[0]


def test_the_custom_round_form_names_item_types_in_words_and_offers_predictions(database: str):
    """Issue #14, 12: not raw ids (`multiple_choice`), and predict-then-observe items can be chosen."""
    test = sign_in()
    kinds = next(box for box in test.multiselect if box.label == "Item types")
    assert "Predict, then watch the model" in kinds.options
    assert "multiple_choice" not in kinds.options and "Multiple choice" in kinds.options
    kinds.set_value(["predict"])
    next(b for b in test.button if b.label == "Start my round").click().run()
    state, item = current_item(test, database)
    assert item.kind == "predict" and all(i.kind == "predict" for i in state.items)
