"""The Ask page through AppTest: a conversation with a follow-up, the evidence, and bad inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kqv_demo.runtime import Runtime
from kqv_demo.ui.navigation import PAGES

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_ask_page() -> AppTest:
    """A new browser session on the Ask page."""
    test = AppTest.from_file(APP, default_timeout=240).run()
    test.switch_page(PAGES["ask"].path).run()
    assert not test.exception, test.exception
    return test


@pytest.fixture
def page(runtime: Runtime) -> AppTest:
    return open_ask_page()


def say(test: AppTest, message: str) -> AppTest:
    test.chat_input[0].set_value(message).run()
    assert not test.exception, test.exception
    return test


def turns(test: AppTest) -> list:
    return test.session_state["ask.turns"]


def test_a_misconception_then_why_stays_on_the_same_claim(page: AppTest):
    say(page, "so attention uses KL divergence to compare queries and keys, right?")
    first = turns(page)[-1][1]
    assert first.stance == "refute" and first.claim_id == "kl-divergence-compares-queries-and-keys"
    text = " ".join(m.value for m in page.markdown)
    assert "Corrects]" in text  # the stance badge
    assert "No: that is a common misconception" in text
    assert page.expander and any("Why this answer" in e.label for e in page.expander)

    say(page, "why?")
    second = turns(page)[-1][1]
    assert second.follow_up == "why" and second.claim_id == first.claim_id and second.stance == "explain"
    assert "Why the idea is tempting" in " ".join(m.value for m in page.markdown)


def test_an_example_button_starts_the_chat(page: AppTest):
    next(b for b in page.button if "softmax" in b.label).click().run()
    assert not page.exception
    reply = turns(page)[-1][1]
    assert reply.stance == "explain" and "softmax" in reply.topics


@pytest.mark.parametrize("message", [
    "   ",
    "<script>alert('x')</script> **bold** [link](javascript:alert(1)) $x^2$ :red[colour]",
    "keys\x00 are\x07 stored\x1b[31m concept vectors, right?",
    "¿Qué hace la atención en un transformer?",
    "attention " * 2500,
])
def test_bad_inputs_get_a_clear_reply_and_are_shown_escaped(page: AppTest, message: str):
    say(page, message)
    reply = turns(page)[-1][1]
    assert reply.answer
    shown = [m.value for m in page.chat_message[0].markdown] if page.chat_message else []
    for value in shown:
        assert "<script>" not in value and "[link](" not in value and ":red[" not in value
    if len(message) > 1000:
        assert "I read only the first 1,000" in " ".join(w.value for w in page.warning)
