"""Hostile chat messages and demo inputs: every kind of piece, no exception, every demo input handled."""

from __future__ import annotations

import pytest

from kqv_demo.content.loader import load_bank
from kqv_demo.explainer.chat import Explainer
from kqv_demo.explainer.message import MAX_MESSAGE_CHARS
from kqv_demo.runtime import Runtime
from kqv_demo.stress.hostile_text import DEMOS_WITH_TEXT, PIECES, demo_inputs, hostile_texts, run


@pytest.fixture(scope="module")
def explainer(runtime: Runtime) -> Explainer:
    return Explainer(load_bank(dialogue=False), runtime)


def test_the_texts_hold_every_kind_of_hostile_piece_and_are_the_same_for_a_seed():
    texts = hostile_texts(2 * len(PIECES), seed=3)
    assert {name for pieces, _ in texts for name in pieces} == set(PIECES)
    joined = "".join(text for _, text in texts)
    for needle in ("](https://", "![", "<script>", "\x00", "\x1b", "\u202e", "😀", "Keys number"):
        assert needle in joined, needle
    assert max(len(text) for _, text in texts) >= 20_000
    assert any(text.count(". ") >= 25 and len(text) >= MAX_MESSAGE_CHARS for _, text in texts)  # many short sentences
    assert hostile_texts(2 * len(PIECES), seed=3) == texts and hostile_texts(2 * len(PIECES), seed=4) != texts


def test_demo_inputs_put_the_text_in_the_prompt_and_in_each_text_parameter_in_turn():
    seen = {}
    for number in range(4 * len(DEMOS_WITH_TEXT)):
        demo_id = DEMOS_WITH_TEXT[number % len(DEMOS_WITH_TEXT)]
        prompt, params = demo_inputs(demo_id, "HOSTILE", number)
        seen.setdefault(demo_id, set()).add("prompt" if prompt == "HOSTILE" else next(iter(params)))
    assert "prompt" in seen["attention-by-hand"]
    assert {"prompt", "prefix", "target", "distractor"} <= seen["context-changes-predictions"]


def test_hostile_texts_through_the_chat_and_the_demos_raise_nothing(explainer: Explainer):
    report = run(count=2 * len(PIECES), seed=0, demo_every=2 * len(PIECES) // len(DEMOS_WITH_TEXT) + 1,
                 explainer=explainer)
    assert report["exceptions"] == 0, report["errors"]
    assert report["messages"] == 2 * len(PIECES) and report["demo_runs"] >= 4
    assert 0 < report["p95_ms"] <= report["max_ms"]
