"""The Ask page's per-session rate limit: a burst of messages is answered, the next is refused with a
clear message and given back to copy (nothing typed is lost), and another session is not affected."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kqv_demo.ratelimit import CHAT
from kqv_demo.runtime import Runtime

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def _ask_page() -> AppTest:
    test = AppTest.from_file(APP, default_timeout=240).run()
    test.switch_page("kqv_demo/ui/pages/ask.py").run()
    assert not test.exception, test.exception
    return test


def _say(test: AppTest, message: str) -> None:
    test.chat_input[0].set_value(message).run()
    assert not test.exception, test.exception


@pytest.fixture
def page(runtime: Runtime) -> AppTest:
    return _ask_page()


def test_messages_past_the_burst_are_refused_with_the_wait_and_given_back(page: AppTest):
    for number in range(CHAT.burst):
        _say(page, f"what is a key vector? ({number})")
    assert len(page.session_state["ask.turns"]) == CHAT.burst
    assert not any("faster than I can answer" in warning.value for warning in page.warning)

    refused = "so attention uses KL divergence, [right](https://evil.example)?"
    _say(page, refused)
    assert len(page.session_state["ask.turns"]) == CHAT.burst  # not answered, not stored
    warnings = [warning.value for warning in page.warning]
    assert any(value.startswith("You are sending messages faster than I can answer; wait ") for value in warnings), warnings
    assert [block.value for block in page.code] == [refused]  # shown as plain text, to copy and send again

    other = _ask_page()  # another visitor's session has its own bucket
    _say(other, "what is a key vector?")
    assert len(other.session_state["ask.turns"]) == 1
