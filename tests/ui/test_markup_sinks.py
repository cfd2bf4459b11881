"""M4: every page, driven with hostile links and inputs, renders no link, image, icon, colour or math
from them. Each Markdown-bearing element of the page (markdown, captions, alerts, headings, widget
labels and help, radio options, metric labels and values, expander and tab labels, toasts) is read
off the AppTest tree and rendered the way Streamlit's frontend renders it (tests/hostile.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kqv_demo import classroom
from kqv_demo.content.loader import load_bank
from kqv_demo.demos import DEMOS
from kqv_demo.quiz.rounds import RoundSpec
from kqv_demo.runtime import Runtime
from kqv_demo.storage import Store
from kqv_demo.ui.navigation import PAGES
from tests.demos.test_hostile_text import HOSTILE_RUNS
from tests.hostile import HOSTILE, SHORT, hostile_findings

APP = str(Path(__file__).resolve().parents[2] / "app.py")

# Proto fields that Streamlit renders as Markdown. Plain-text elements (st.text, st.code, st.json,
# dataframes, selectbox options, text values and placeholders) are left out: they need no escaping.
MARKDOWN_FIELDS = ("body", "label", "help", "captions", "delta")
MARKDOWN_OPTIONS = ("radio",)  # format_func labels rendered as Markdown
PLAIN = {"text", "code", "json", "dataframe", "arrow_data_frame", "arrow_table", "exception"}


def _nodes(node) -> Iterator:
    yield node
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for child in children.values():
            yield from _nodes(child)


def markdown_texts(test: AppTest) -> list[tuple[str, str]]:
    """(where, Markdown) for every Markdown-bearing string on the page."""
    texts = []
    for node in _nodes(test._tree):
        kind = getattr(node, "type", "")
        if kind in PLAIN:
            continue
        if kind in ("expander", "tab", "status"):
            texts.append((kind, node.label))
            continue
        proto = getattr(node, "proto", None)
        if proto is None or not hasattr(proto, "DESCRIPTOR"):
            continue
        fields = proto.DESCRIPTOR.fields_by_name
        for name in MARKDOWN_FIELDS + (("options",) if kind in MARKDOWN_OPTIONS else ()):
            if name not in fields:
                continue
            value = getattr(proto, name)
            values = [value] if isinstance(value, str) else [getattr(v, "label", v) for v in value]
            texts += [(f"{kind}.{name}", v) for v in values if isinstance(v, str) and v]
    return texts


def leaks(test: AppTest) -> list[str]:
    """Each Markdown string that renders one of our payloads as a link, image, icon, colour or math."""
    assert not test.exception, test.exception
    return [f"{where}: {', '.join(map(str, found))} in {text[:160]!r}"
            for where, text in markdown_texts(test) if (found := hostile_findings(text))]


@pytest.fixture
def database(tmp_path: Path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'sinks.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def open_page(page: str, session_state: dict | None = None, **query: str) -> AppTest:
    test = AppTest.from_file(APP, default_timeout=300)
    test.run()
    test.switch_page(PAGES[page].path)
    for key, value in query.items():
        test.query_params[key] = value
    for key, value in (session_state or {}).items():
        test.session_state[key] = value
    return test.run()


def test_the_collector_sees_a_planted_link(runtime: Runtime, database: str):
    """The check itself: an unescaped payload in a page (?demo= before the fix) is reported."""
    test = open_page("claims", claim="x")
    test.warning[0].proto.body = "unescaped " + HOSTILE  # what the page showed before the fix
    found = "\n".join(leaks(test))
    for kind in ("link: https://evil.example/a", "image: https://evil.example/p.png", "www.evil.example",
                 "mailto:kqv@evil.example", "icon: :material_home:", "colour: :red[", "math:"):
        assert kind in found, kind


@pytest.mark.parametrize("page,query", [
    ("demo_lab", {"demo": HOSTILE}),
    ("claims", {"claim": HOSTILE}),
    ("quiz", {"class": HOSTILE}),
    ("quiz", {"class": SHORT}),
], ids=["demo", "claim", "class", "class-short"])
def test_hostile_url_parameters_show_literally(runtime: Runtime, database: str, page: str, query: dict):
    test = open_page(page, **query)
    assert leaks(test) == []
    assert any("evil" in text for _, text in markdown_texts(test)), "the page no longer quotes the value"


@pytest.mark.parametrize("query", [
    {"round": HOSTILE},
    {"round": "core-10", "seed": HOSTILE},
    {"round": "custom", "topics": SHORT},
    {"r": HOSTILE},
], ids=["round", "seed", "topics", "r"])
def test_hostile_round_links_show_literally(runtime: Runtime, database: str, query: dict):
    learner = Store(database).create_learner("Ada")
    test = open_page("quiz", learner=learner, **query)
    assert leaks(test) == []


@pytest.mark.parametrize("demo_id", [demo_id for demo_id, demo in DEMOS.items() if demo.prompt_label])
def test_hostile_demo_prompts_and_text_parameters_show_literally(runtime: Runtime, demo_id: str):
    """?prompt= and the text parameters, quoted back in the explanation, headline, status and
    details (the model's generated text included: no-learning, kv-cache, confidence)."""
    demo = DEMOS[demo_id]
    prompt, params = HOSTILE_RUNS.get(demo_id, (demo.default_prompt + " " + HOSTILE, {}))
    test = open_page("demo_lab", demo=demo_id, prompt=prompt, **{k: str(v) for k, v in params.items()})
    if demo.details:
        next(e for e in test.expander if e.label == "The formula and the code")  # details are on the page
    assert leaks(test) == []


def test_a_refused_demo_input_is_quoted_literally(runtime: Runtime):
    """The error message quotes the learner's sentence and word."""
    test = open_page("demo_lab", demo="keys-are-computed", prompt="I sat on the river bank " + HOSTILE,
                     word=SHORT)
    assert test.error and "is not a single token" in test.error[0].value
    assert leaks(test) == []


def test_a_hostile_learner_name_shows_literally(runtime: Runtime, database: str):
    test = open_page("quiz")
    test.text_input[0].set_value(SHORT)
    test.button[0].click().run()
    test.button(key="start-core-10").click().run()
    test.query_params.pop("r")
    test.run()  # back on the round list: "Hello, NAME" and the resume button
    assert any("Resume" in button.label for button in test.button)
    assert leaks(test) == []


def test_a_hostile_numeric_answer_shows_literally(runtime: Runtime, database: str):
    learner = Store(database).create_learner("Ada")
    test = open_page("quiz", learner=learner, round="custom", kinds="numeric", count="1")
    next(b for b in test.button if b.label == "Start this round").click().run()
    test.text_input[0].set_value(SHORT[:40])
    test.radio[0].set_value(2)
    next(b for b in test.button if b.label == "Check my answer").click().run()
    # refused before scoring (not a number), and the message quotes it as text: no link, no image
    assert test.error and "is not a number" in test.error[0].value
    assert leaks(test) == []


@pytest.fixture
def hostile_class(database: str) -> str:
    """A class round whose title an instructor typed or uploaded with payloads."""
    spec = RoundSpec(id="class", title=HOSTILE, description=HOSTILE, count=2, kinds=("verdict",))
    code, _key = classroom.create_class(Store(database), load_bank(), spec)
    return code


def test_a_hostile_class_title_shows_literally_to_students(runtime: Runtime, database: str, hostile_class: str):
    test = open_page("quiz", **{"class": hostile_class})
    assert leaks(test) == []  # "You are joining the class round TITLE"
    test.text_input[0].set_value(SHORT)
    test.button[0].click().run()
    assert "r" in test.query_params
    assert leaks(test) == []  # the round's title as its heading
    test.query_params.pop("r")
    test.run()
    assert leaks(test) == []  # "Resume TITLE"


def test_a_hostile_class_title_and_student_show_literally_to_the_instructor(
        runtime: Runtime, database: str, hostile_class: str):
    store = Store(database)
    classroom.join_class(store, hostile_class, store.learner(store.create_learner(SHORT))[0])
    test = open_page("instructor", session_state={"class_access": hostile_class})
    assert leaks(test) == []  # the dashboard and the Export tab
    next(radio for radio in test.radio if radio.label == "Format").set_value("gift").run()
    next(button for button in test.button if button.label == "Build the file").click().run()
    assert any(button.label.startswith("Download") for button in test.get("download_button"))
    assert leaks(test) == []


def test_the_chat_shows_a_hostile_message_and_the_reply_literally(runtime: Runtime):
    test = open_page("ask")
    test.chat_input[0].set_value("so attention uses KL divergence, right? " + HOSTILE).run()
    assert len(test.chat_message) == 2
    assert leaks(test) == []
