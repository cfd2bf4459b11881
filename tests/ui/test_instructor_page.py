"""The Instructor page with the Quiz page: create a class round, two students play it, the dashboard counts;
the instructor starts the round, closes joining and removes a student."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kqv_demo.classroom import class_results, normalise_code, results_csv
from kqv_demo.content.loader import load_bank
from kqv_demo.quiz.session import load_round
from kqv_demo.storage import Store
from kqv_demo.ui.navigation import PAGES
from tests.ui.markdown_text import plain

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
    test.switch_page(PAGES[name].path)
    for key, value in query.items():
        test.query_params[key] = value
    test.run()
    assert not test.exception, test.exception
    return test


def button(test: AppTest, label: str):
    return next(b for b in test.button if b.label == label)


def widget(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def shown(test: AppTest) -> str:
    return plain(" ".join(e.value for kind in ("markdown", "caption", "info", "warning", "error", "success")
                          for e in test.get(kind)))


def create_round(feedback: str = "end", minutes: int = 0, start: str = "now", cap: int | None = None,
                 ) -> tuple[str, str, AppTest]:
    """Fill the New round form; returns the code and the key the page shows once, and the instructor's page."""
    test = page("instructor")
    widget(test.text_input, "Title the class sees").set_value("Workshop <b>*one*</b>")
    test.multiselect[0].set_value(CLAIMS)
    test.multiselect[2].set_value(["verdict", "multiple_choice"])
    widget(test.number_input, "Questions").set_value(3)
    widget(test.number_input, "Time limit in minutes (0 = none)").set_value(minutes)
    if cap is not None:
        widget(test.number_input, "Most students who can join").set_value(cap)
    widget(test.radio, "Students start").set_value(start)
    widget(test.radio, "Order").set_value("bank")
    widget(test.radio, "Feedback").set_value(feedback)
    button(test, "Create the class round").click().run()
    assert not test.exception, test.exception
    heading = next(m.value for m in test.markdown if m.value.startswith("# "))
    code = normalise_code(heading.removeprefix("# "))
    link, key = (block.value for block in test.code)
    assert link.endswith(f"/quiz?class={code}")
    assert "shown only this once" in test.warning[0].value
    return code, key, test


def join(code: str, name: str) -> AppTest:
    """A student opens ?class=CODE and gives a name."""
    test = page("quiz", **{"class": code})
    assert "joining the class round" in test.info[0].value
    widget(test.text_input, "Your name or a nickname").set_value(name)
    button(test, "Start").click().run()
    assert not test.exception, test.exception
    return test


def play(url: str, code: str, name: str, plan: list[tuple[bool, int]]) -> AppTest:
    """A student opens ?class=CODE, gives a name and answers len(plan) questions (right?, confidence)."""
    test = join(code, name)
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


def csv_rows(url: str, code: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(results_csv(class_results(Store(url), load_bank(dialogue=False), code)))))


def open_results(code: str, key: str) -> AppTest:
    test = page("instructor")
    code_box, key_box = test.text_input[-2], test.text_input[-1]
    code_box.set_value(code.lower())
    key_box.set_value(key)
    button(test, "Show the results").click().run()
    assert not test.exception, test.exception
    return test


def test_a_class_round_from_creation_to_the_dashboard(database: str):
    code, key, created = create_round()
    assert "At most 300 students can join. They can start as soon as they join." in shown(created)
    ada = play(database, code, "Ada", [(True, 3), (False, 3), (False, 2)])
    assert any("Each question, with its answer and explanation" in m.value for m in ada.markdown)
    assert {m.label: m.value for m in ada.metric}["Score"] == "1 / 3"
    assert ada.success[0].value == "Round finished."  # no stale "Answer saved" above it
    assert not any("Answer saved" in s.value for s in ada.success)
    assert len(ada.expander) >= 3  # each item's feedback at the end
    bo = play(database, code, "<img src=x onerror=alert(1)>", [(True, 1)])
    assert "Question 2." in " ".join(m.value for m in bo.markdown)

    again = page("quiz", **{"class": code}, learner=ada.query_params["learner"])  # reopening the link...
    assert "r" not in again.query_params and "You are playing as **Ada**. Not you?" in shown(again)
    button(again, "I am Ada: join").click().run()  # ...asks first, then resumes
    assert again.query_params["r"] == ada.query_params["r"]

    dashboard = open_results(code, key)
    assert "Joining is open (2 of at most 300 places taken)." in shown(dashboard)
    metrics = {m.label: m.value for m in dashboard.metric}
    assert (metrics["Joined"], metrics["Finished"], metrics["Answers"]) == ("2", "1", "4")
    items, misconceptions = (table.value for table in dashboard.table)  # static tables: long text wraps
    (students,) = (frame.value for frame in dashboard.dataframe)
    assert list(items["answered"]) == [2, 1, 1]
    assert list(items["right"]) == ["100% of 2", "0% of 1", "0% of 1"]  # all wrong is not "unanswered"
    assert all(prompt and not prompt.endswith("…") for prompt in items["prompt"])
    assert list(misconceptions["wrong and sure"]) == [1, 0] and list(misconceptions["wrong and fairly sure"]) == [0, 1]
    assert list(students["student"]) == ["Ada", "<img src=x onerror=alert(1)>"]  # a table cell, never HTML
    assert list(students["certainty-based score"]) == ["-5 / 9", "1 / 3"]
    assert list(students["finished"]) == ["yes", "no"]
    (chart,) = dashboard.get("arrow_vega_lite_chart") or dashboard.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["bar", "text"]  # each bar labelled
    assert "unanswered ones have no bar" not in chart.proto.spec
    assert dashboard.get("download_button")[0].proto.label == "Download the results (CSV)"
    assert any("confidence: 1 unsure, 2 fairly sure, 3 sure" in c.value for c in dashboard.caption)  # the codes
    export_choice = next(box for box in dashboard.selectbox if box.label == "Round to export")
    assert export_choice.value == code and any(r.label == "Format" for r in dashboard.radio)
    table = csv_rows(database, code)
    assert [row["student"] for row in table] == ["Ada"] * 3 + ["<img src=x onerror=alert(1)>"] * 3


def test_a_timed_round_shows_the_time_left_and_a_wrong_key_is_refused(database: str):
    code, key, _created = create_round("immediate", minutes=20)
    student = play(database, code, "Cy", [])
    assert "Time left: about 19 minutes" in student.info[0].value
    assert any(b.label == "Check my answer" for b in student.button)  # immediate feedback: the usual flow
    refused = open_results(code, key[::-1])
    assert refused.error[0].value.startswith("That instructor key is not right for round")
    assert not refused.metric and "class_access" not in refused.session_state


def test_an_uploaded_round_file_with_errors_shows_file_and_line(database: str):
    test = page("instructor")
    widget(test.radio, "Build the round from").set_value("An uploaded file").run()
    test.file_uploader[0].set_value(("mine.yaml", b"id: mine\ntitle: Mine\nclaims: [nope]\n", "application/x-yaml"))
    test.run()
    assert not test.exception, test.exception
    assert "1 problem(s) in mine.yaml" in plain(test.error[0].value)
    assert "mine.yaml:3: claims[0]: no claim 'nope' in the bank" in test.code[0].value


def test_students_wait_until_the_instructor_starts_the_round(database: str):
    code, key, instructor = create_round(minutes=15, start="wait")
    assert "They wait until you press Start the round" in shown(instructor)
    student = join(code, "Early")
    assert "Waiting for your instructor to start the round" in shown(student)
    assert not any(b.label in ("Save my answer", "Check my answer") for b in student.button), "no question yet"
    assert "Time left" not in shown(student) and "15" not in shown(student), "nor the time limit"

    instructor.run()  # the dashboard's refresh
    assert "1 student(s) waiting" in shown(instructor)
    button(instructor, "Start the round").click().run()
    assert not instructor.exception, instructor.exception
    assert "Started at" in shown(instructor) and not any(b.label == "Start the round" for b in instructor.button)
    student.run()  # what the waiting page's own check does every few seconds
    assert any(b.label == "Save my answer" for b in student.button)
    assert "Time left: about 14 minutes" in shown(student)


def test_the_instructor_closes_joining_and_removes_a_student(database: str):
    code, key, instructor = create_round(cap=5)
    assert "At most 5 students can join" in shown(instructor)
    play(database, code, "Stays", [(True, 2)])
    spammer = play(database, code, "Fake student 1", [(False, 3)])

    button(instructor, "Close joining").click().run()
    assert "Joining is closed (2 of at most 5 places taken)" in shown(instructor)
    late = page("quiz", **{"class": code})
    widget(late.text_input, "Your name or a nickname").set_value("Late")
    button(late, "Start").click().run()
    assert "Joining this class round is closed" in shown(late) and "r" not in late.query_params

    removal = widget(instructor.selectbox, "Student")
    assert removal.options == ["Stays", "Fake student 1"]
    removal.set_value(next(s.round_id for s in class_results(Store(database), load_bank(dialogue=False), code).students
                           if s.name == "Fake student 1")).run()
    button(instructor, "Remove this student").click().run()
    assert not instructor.exception, instructor.exception
    metrics = {m.label: m.value for m in instructor.metric}
    assert (metrics["Joined"], metrics["Answers"]) == ("1", "1")
    students = instructor.dataframe[-1].value  # no misconceptions table: the only confident error left with them
    assert list(students["student"]) == ["Stays"]
    table = csv_rows(database, code)
    assert {row["student"] for row in table} == {"Stays"}

    spammer.run()
    assert "Your instructor removed you from this class round" in shown(spammer)
    assert not any(b.label in ("Save my answer", "Check my answer") for b in spammer.button)


def test_a_link_with_someone_elses_profile_asks_before_joining(database: str):
    """?class=CODE&learner=ADAS_KEY sent to Bo: Bo is asked, starts a profile of his own and plays as himself."""
    code, _key, _instructor = create_round()
    ada = play(database, code, "Ada", [(True, 3)])
    ada_key, ada_round = ada.query_params["learner"], ada.query_params["r"]

    bo = page("quiz", **{"class": code}, learner=ada_key)
    assert "You are playing as **Ada**. Not you?" in shown(bo)
    assert "r" not in bo.query_params and not any(b.label == "Save my answer" for b in bo.button)
    button(bo, "Not me: start a new profile").click().run()
    assert "learner" not in bo.query_params and bo.query_params["class"] == code
    widget(bo.text_input, "Your name or a nickname").set_value("Bo")
    button(bo, "Start").click().run()
    assert bo.query_params["learner"] != ada_key and bo.query_params["r"] != ada_round
    assert "Playing as **Bo**." in shown(bo)
    store = Store(database)
    assert len(store.answers(store.round(ada_round).id)) == 1, "nothing of Bo's in Ada's round"
    assert [s.name for s in class_results(store, load_bank(dialogue=False), code).students] == ["Ada", "Bo"]


@pytest.mark.parametrize("name", ["Ada", "[prize](https://evil.example) ![x](https://t.example/p.png)"])
def test_every_round_page_names_the_profile_playing_it(database: str, name: str):
    code, _key, _instructor = create_round()
    student = play(database, code, name, [])
    caption = next(c.value for c in student.caption if c.value.startswith("Playing as"))
    assert plain(caption) == f"Playing as **{name}**."
    assert "](" not in caption.replace("\\]\\(", ""), "shown as typed: never a link or an image"
    own = page("quiz", learner=student.query_params["learner"])
    own.button(key="start-core-10").click().run()
    assert any(plain(c.value) == f"Playing as **{name}**." for c in own.caption), "on a learner's own round too"
    button(own, "Not you? Start a new profile").click().run()
    assert "learner" not in own.query_params and "r" not in own.query_params
    assert own.text_input[0].label.startswith("Your name")


def test_a_student_back_in_another_browser_resumes_from_the_link_on_the_round_page(database: str):
    """Issue #14, 1: opening the class link again in a fresh browser and typing the same name must not make
    a second "Ada" at 0 of 3; the round page shows every student their link back, which resumes the round."""
    code, key, _ = create_round(feedback="end")
    ada = play(database, code, "Ada", [(True, 2)])
    (link,) = [c.value for c in ada.code if "/quiz?" in c.value]
    assert f"r={ada.query_params['r']}" in link and f"learner={ada.query_params['learner']}" in link

    again = join(code, "ada")  # a new browser: no profile in the session, the same name typed
    assert any("already joined this class round" in e.value for e in again.error)
    assert "r" not in again.query_params
    assert any(b.label == "Join under another name" for b in again.button)

    query = dict(pair.split("=", 1) for pair in link.split("?", 1)[1].split("&"))
    back = page("quiz", **query)  # the saved link, in that other browser
    assert back.query_params["r"] == ada.query_params["r"] and "1 of 3 answered" in " ".join(
        p.proto.text for p in back.get("progress"))
    results = class_results(Store(database), load_bank(dialogue=False), code)
    assert [student.name for student in results.students] == ["Ada"]  # one row, not two
