"""A round whose title, description, question and claim texts carry markup and control characters
(L6): an instructor's uploaded round file or an edited claim can hold both. Every export must still
parse and show the text as text."""

from __future__ import annotations

import dataclasses

from kqv_demo.content.loader import Bank
from kqv_demo.exports.live import Live
from kqv_demo.quiz.items import Item
from kqv_demo.quiz.rounds import RoundSpec

MARKUP = '<b>KQVBOLD</b> <img src=x onerror=alert(1)> & "quoted" ]]> {~=#:} [x](javascript:alert(1))'
CONTROL = "\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85\ud800\ufffe\u202e"
TITLE = f"Round {MARKUP} {CONTROL}end"
PROMPT = f"Question {MARKUP} {CONTROL}end"
CLAIM = f"Claim {MARKUP} {CONTROL}end"


def readable(text: str) -> str:
    """What a reader must see of `text`: the markup as typed, the control characters gone."""
    return squash(text.replace(CONTROL, ""))


def hostile_round(bank: Bank, small_round: tuple[RoundSpec, list[Item]]) -> tuple[Bank, RoundSpec, list[Item]]:
    """The small round with a hostile title and description, a hostile first question, and its claim
    restated with markup and control characters."""
    spec, items = small_round
    first = dataclasses.replace(items[0], prompt=PROMPT, explanation=PROMPT)
    claim = bank.claims[first.claim_id]
    refutation = claim.refutation.model_copy(update={"claim": CLAIM, "verdict": CLAIM})
    claims = {**bank.claims, claim.id: claim.model_copy(update={"refutation": refutation})}
    hostile_spec = spec.model_copy(update={"title": TITLE, "description": TITLE})
    return dataclasses.replace(bank, claims=claims), hostile_spec, [first, *items[1:]]


def no_figures() -> Live:
    """A handout needs a Live; these tests are about text, not figures."""
    return Live(claim_figure={}, prediction_figure={})


def squash(text: str) -> str:
    return " ".join(text.split())
