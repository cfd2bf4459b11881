"""The Ask page's per-session rate limit: a burst of messages is answered, the next is refused with a
clear message and given back to copy (nothing typed is lost), and another session is not affected."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from kqv_demo import ratelimit
from kqv_demo.ratelimit import CHAT
from kqv_demo.runtime import Runtime
from tests.ui.test_ask_page import open_ask_page, say


@pytest.fixture
def page(runtime: Runtime) -> AppTest:
    return open_ask_page()


def test_messages_past_the_burst_are_refused_with_the_wait_and_given_back(page: AppTest, monkeypatch):
    # the clock stands still: no message is earned back however long the answers take on a busy machine
    monkeypatch.setattr(ratelimit, "now_seconds", lambda: 1_000.0)
    for number in range(CHAT.burst):
        say(page, f"what is a key vector? ({number})")
    assert len(page.session_state["ask.turns"]) == CHAT.burst
    assert not any("faster than I can answer" in warning.value for warning in page.warning)

    refused = "so attention uses KL divergence, [right](https://evil.example)?"
    say(page, refused)
    assert len(page.session_state["ask.turns"]) == CHAT.burst  # not answered, not stored
    warnings = [warning.value for warning in page.warning]
    assert any(value.startswith("You are sending messages faster than I can answer; wait ")
               for value in warnings), warnings
    assert [block.value for block in page.code] == [refused]  # shown as plain text, to copy and send again

    other = open_ask_page()  # another visitor's session has its own bucket
    say(other, "what is a key vector?")
    assert len(other.session_state["ask.turns"]) == 1
