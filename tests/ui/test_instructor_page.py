"""The Instructor page with the Quiz page: create a class round, two students play it, the dashboard counts."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kqv_demo.classroom import class_results, normalise_code, results_csv
from kqv_demo.content.loader import load_bank
from kqv_demo.quiz.session import load_round
from kqv_demo.storage import Store

APP = str(Path(__file__).resolve().parents[2] / "app.py")
CLAIMS = ["kl-divergence-compares-queries-and-keys", "softmax-turns-scores-into-attention-distribution"]


@pytest.fixture
def database(tmp_path: Path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'class.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def page(name: str, **query: str) -> AppTest:
    test = AppTest.from_file(APP, default_timeout=90)
    test.run()
    test.switch_page(f"kqv_demo/ui/pages/{name}.py")
    for key, value in query.items():
        test.query_params[key] = value
    test.run()
    assert not test.exception, test.exception
    return test


def button(test: AppTest, label: str):
    return next(b for b in test.button if b.label == label)


def create_round(feedback: str = "end", minutes: int = 0) -> tuple[str, str]:
    """Fill the New round form; returns the code and the key the page shows once."""
    test = page("instructor")
    test.text_input[0].set_value("Workshop <b>*one*</b>")
    test.multiselect[0].set_value(CLAIMS)
    test.multiselect[2].set_value(["verdict", "multiple_choice"])
    test.number_input[0].set_value(3)
    test.number_input[1].set_value(minutes)
    order, feedback_radio = test.radio[1], test.radio[2]
    order.set_value("bank")
    feedback_radio.set_value(feedback)
    button(test, "Create the class round").click().run()
    assert not test.exception, test.exception
    heading = next(m.value for m in test.markdown if m.value.startswith("# "))
    code = normalise_code(heading.removeprefix("# "))
    link, key = (block.value for block in test.code)
    assert link.endswith(f"/quiz?class={code}")
    assert "shown only this once" in test.warning[0].value
    return code, key


def play(url: str, code: str, name: str, plan: list[tuple[bool, int]]) -> AppTest:
    """A student opens ?class=CODE, gives a name and answers len(plan) questions (right?, confidence)."""
    test = page("quiz", **{"class": code})
    assert "joining the class round" in test.info[0].value
    test.text_input[0].set_value(name)
    button(test, "Start").click().run()
    assert "r" in test.query_params and "class" not in test.query_params, test.query_params
    for correct, confidence in plan:
        state = load_round(Store(url), load_bank(dialogue=False), test.query_params["r"])
        item = state.next_item
        response = item.answer if correct else next(c for c in item.choices if c != item.answer)
        test.radio[0].set_value(response)
        test.radio[1].set_value(confidence)
        button(test, "Save my answer").click().run()
        assert not test.exception, test.exception
        if state.position + 1 < len(state.items):
            assert "Answer saved" in test.success[0].value and not test.error, "no feedback until the end"
    return test


def open_results(code: str, key: str) -> AppTest:
    test = page("instructor")
    code_box, key_box = test.text_input[-2], test.text_input[-1]
    code_box.set_value(code.lower())
    key_box.set_value(key)
    button(test, "Show the results").click().run()
    assert not test.exception, test.exception
    return test


def test_a_class_round_from_creation_to_the_dashboard(database: str):
    code, key = create_round()
    ada = play(database, code, "Ada", [(True, 3), (False, 3), (False, 2)])
    assert any("Each question, with its answer and explanation" in m.value for m in ada.markdown)
    assert {m.label: m.value for m in ada.metric}["Score"] == "1 / 3"
    assert len(ada.expander) >= 3  # each item's feedback at the end
    bo = play(database, code, "<img src=x onerror=alert(1)>", [(True, 1)])
    assert "Question 2." in " ".join(m.value for m in bo.markdown)

    again = page("quiz", **{"class": code}, learner=ada.query_params["learner"])  # reopening the link resumes
    assert again.query_params["r"] == ada.query_params["r"]

    dashboard = open_results(code, key)
    metrics = {m.label: m.value for m in dashboard.metric}
    assert (metrics["Joined"], metrics["Finished"], metrics["Answers"]) == ("2", "1", "4")
    items, misconceptions, students = (frame.value for frame in dashboard.dataframe)
    assert list(items["answered"]) == [2, 1, 1] and list(items["right"]) == [100, 0, 0]
    assert list(misconceptions["wrong and sure"]) == [1, 0] and list(misconceptions["wrong and fairly sure"]) == [0, 1]
    assert list(students["student"]) == ["Ada", "<img src=x onerror=alert(1)>"]  # a table cell, never HTML
    assert list(students["certainty-based score"]) == ["-5 / 9", "1 / 3"]
    assert list(students["finished"]) == ["yes", "no"]
    assert len(dashboard.get("vega_lite_chart")) == 1
    assert dashboard.get("download_button")[0].proto.label == "Download the results (CSV)"
    export_choice = next(box for box in dashboard.selectbox if box.label == "Round to export")
    assert export_choice.value == code and any(r.label == "Format" for r in dashboard.radio)
    table = list(csv.DictReader(io.StringIO(results_csv(class_results(Store(database), load_bank(dialogue=False), code)))))
    assert [row["student"] for row in table] == ["Ada"] * 3 + ["<img src=x onerror=alert(1)>"] * 3


def test_a_timed_round_shows_the_time_left_and_a_wrong_key_is_refused(database: str):
    code, key = create_round("immediate", minutes=20)
    student = play(database, code, "Cy", [])
    assert "Time left: about 19 minutes" in student.info[0].value
    assert any(b.label == "Check my answer" for b in student.button)  # immediate feedback: the usual flow
    refused = open_results(code, key[::-1])
    assert refused.error[0].value.startswith("That instructor key is not right for round")
    assert not refused.metric and "class_access" not in refused.session_state


def test_an_uploaded_round_file_with_errors_shows_file_and_line(database: str):
    test = page("instructor")
    test.radio[0].set_value("An uploaded file").run()
    test.file_uploader[0].set_value(("mine.yaml", b"id: mine\ntitle: Mine\nclaims: [nope]\n", "application/x-yaml"))
    test.run()
    assert not test.exception, test.exception
    assert "1 problem(s) in mine.yaml" in test.error[0].value
    assert "mine.yaml:3: claims[0]: no claim 'nope' in the bank" in test.code[0].value
