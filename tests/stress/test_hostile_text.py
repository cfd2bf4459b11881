"""Hostile chat messages and demo inputs: every kind of piece, no exception, every demo input handled."""

from __future__ import annotations

import pytest

from kqv_demo.content.loader import load_bank
from kqv_demo.explainer.chat import Explainer
from kqv_demo.explainer.message import MAX_MESSAGE_CHARS
from kqv_demo.runtime import Runtime
from kqv_demo.markup import literal, literal_block
from kqv_demo.stress.hostile_text import DEMOS_WITH_TEXT, PIECES, demo_inputs, hostile_texts, links_rendered, run


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
    assert report["exceptions"] == 0 and report["links_rendered"] == 0, report["errors"]
    assert report["messages"] == 2 * len(PIECES) and report["demo_runs"] >= 4
    assert 0 < report["p95_ms"] <= report["max_ms"]


@pytest.mark.parametrize("markdown,links", [
    ("[claim your prize](https://evil.example/login)", 1),
    ("![pixel](https://tracker.example/p.png)", 1),
    ("see https://evil.example or www.evil.example", 2),
    ("<https://evil.example>", 1),
    ("a **bold** claim with `code`", 0),
])
def test_links_rendered_counts_what_markdown_would_turn_into_a_link(markdown: str, links: int):
    assert links_rendered(markdown) == links
    assert links_rendered(literal(markdown)) == 0 and links_rendered(literal_block(markdown + "\n" + markdown)) == 0


def test_the_banks_own_reference_links_are_not_counted_but_any_other_is():
    markdown = "- Vaswani et al. (2017). https://arxiv.org/abs/1706.03762\n- [prize](https://evil.example)"
    assert links_rendered(markdown) == 2
    assert links_rendered(markdown, frozenset({"https://arxiv.org/abs/1706.03762"})) == 1
