"""Name a round on the command line or in a link: a built-in id, a round file, or a class round code."""

from __future__ import annotations

from kqv_demo.content.loader import Bank
from kqv_demo.errors import UserInputError
from kqv_demo.quiz.items import Item
from kqv_demo.quiz.predict import prediction_items
from kqv_demo.quiz.rounds import BUILT_IN, RoundSpec, build_round


def resolve_round(bank: Bank, name: str) -> RoundSpec:
    """The round called `name`. Only built-in ids so far; round files and class codes come next."""
    spec = BUILT_IN.get(name.strip())
    if spec is None:
        raise UserInputError(f"There is no round called {name!r}. Built-in rounds: {', '.join(BUILT_IN)}.")
    return spec


def round_items(bank: Bank, spec: RoundSpec) -> list[Item]:
    """The items of a round, exactly as a learner playing it would get them."""
    return build_round(bank, spec, prediction_items())
