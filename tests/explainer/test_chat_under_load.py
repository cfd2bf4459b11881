"""The chat stays fair to everyone while one visitor sends hostile messages and another builds an export.

No clocks: the work per message is counted in tokens, and the slowdown a normal answer sees under that load
is a benchmark figure (`bench --json`: chat_slowdown_under_load), not a test.
"""

from __future__ import annotations

import pytest
import torch

from kqv_demo.content.loader import Bank, load_bank
from kqv_demo.explainer.chat import Explainer
from kqv_demo.explainer.reading import MAX_PARTS, sentences, split_parts
from kqv_demo.runtime import EMBED_MAX_TOKENS, Runtime
from kqv_demo.stress.chat_under_load import HOSTILE, NORMAL, under_load

# 1,000 characters of sentences that are each about 80 tokens long (every letter and dot is a token).
DENSE = " ".join(f"{'.'.join('abcdefghij'[(i + j) % 10] for j in range(35))} keys are stored here {i}."
                  for i in range(40))[:1000]
# A message as long as a real learner's longest: one paragraph of prose, 1,000 characters.
LONG_PROSE = ("The attention weights come from a softmax over the scaled dot products between the query and "
              "every key, and the output mixes the values with those weights so that each token gathers "
              "information from its context. " * 5)[:1000]


@pytest.fixture(scope="module")
def bank() -> Bank:
    return load_bank(dialogue=False)


@pytest.fixture(scope="module")
def explainer(bank: Bank, runtime: Runtime) -> Explainer:
    return Explainer(bank, runtime)


class PaddedTokens:
    """Counts the tokens (padding included) of every pass of a real model, by watching its input."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.passes: list[tuple[int, int]] = []

    def __enter__(self) -> PaddedTokens:
        def record(_module, args, kwargs) -> None:
            ids = kwargs.get("input_ids", args[0] if args else None)
            self.passes.append(tuple(ids.shape))

        self.handle = self.model.register_forward_pre_hook(record, with_kwargs=True)
        return self

    def __exit__(self, *_exc) -> None:
        self.handle.remove()

    @property
    def total(self) -> int:
        return sum(rows * length for rows, length in self.passes)


def test_the_hostile_messages_are_what_they_claim(runtime: Runtime):
    assert len(HOSTILE) == 1000 and HOSTILE.count(". ") > 2 * MAX_PARTS
    assert len(split_parts(HOSTILE)) == MAX_PARTS  # the whole message and its first sentences
    dense = sentences(DENSE)
    assert len(dense) >= 10 and sum(runtime.token_counts(dense)) > 3 * EMBED_MAX_TOKENS


@pytest.mark.parametrize("hostile_message", [HOSTILE, DENSE], ids=["many-short-sentences", "dense-sentences"])
def test_a_hostile_message_costs_at_most_twice_a_long_normal_one(
    explainer: Explainer, runtime: Runtime, hostile_message: str
):
    stance = explainer.stance_model.model
    with PaddedTokens(runtime.minilm.model) as prose, PaddedTokens(stance) as prose_stance:
        explainer.answer(LONG_PROSE)
    with PaddedTokens(runtime.minilm.model) as hostile, PaddedTokens(stance) as hostile_stance:
        explainer.answer(hostile_message)
    assert hostile.total <= 2 * prose.total, (hostile.passes, prose.passes)
    # the stance model reads a bounded number of (part, statement) pairs, however many sentences arrive
    assert prose_stance.total > 0 and hostile_stance.total <= 2 * prose_stance.total, (
        hostile_stance.passes, prose_stance.passes)
    # and no single pass is longer than one full-length text
    assert all(rows * length <= EMBED_MAX_TOKENS for rows, length in hostile.passes), hostile.passes


def test_every_visitor_gets_answers_while_a_hostile_message_and_an_export_run(
    explainer: Explainer, bank: Bank, runtime: Runtime
):
    """The threads really share the explainer and the models: the normal visitor's answers stay the same
    answer, the hostile visitor gets answers, and nothing fails. How much slower the normal answer gets is
    a speed, so it is the benchmark's `chat_slowdown_under_load` (kqv_demo/stress/chat_under_load.py)."""
    quiet = explainer.answer(NORMAL)
    busy, hostile_answers = under_load(explainer, bank, runtime, count=4)
    assert hostile_answers > 0, "the hostile visitor never got an answer"
    assert len(busy) == 4 and all(ms > 0 for ms in busy)
    assert explainer.answer(NORMAL).text == quiet.text
