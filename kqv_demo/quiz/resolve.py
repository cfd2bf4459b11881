"""Name a round on the command line or in a link: a built-in id or a round file. Class round codes are
looked up one layer up, in `kqv_demo.classroom.resolve`, which falls back to them (the quiz layer knows
nothing of classes)."""

from __future__ import annotations

from pathlib import Path

from kqv_demo.content.loader import Bank
from kqv_demo.errors import UserInputError
from kqv_demo.quiz.items import Item
from kqv_demo.quiz.predict import prediction_items
from kqv_demo.quiz.round_files import load_round_file, load_round_files
from kqv_demo.quiz.rounds import BUILT_IN, RoundSpec, build_round


def named_round(bank: Bank, name: str) -> RoundSpec | None:
    """The round called `name`, tried in this order: a built-in id (core-10), a path to a round file
    (my-round.yaml), the id of a file in content/rounds/ (workshop-45); None when it is none of them.
    A round file with errors raises UserInputError with them."""
    name = name.strip()
    if name in BUILT_IN:
        return BUILT_IN[name]
    path = Path(name)
    if name.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise UserInputError(f"There is no round file {name}.")
        spec, errors = load_round_file(bank, path)
        if spec is None:
            raise UserInputError(f"The round file {name} has errors:\n" + "\n".join(map(str, errors)))
        return spec
    return load_round_files(bank).specs.get(name)


def round_names(bank: Bank) -> list[str]:
    """The built-in ids and the ids of content/rounds/, for "no such round" messages."""
    return [*BUILT_IN, *load_round_files(bank).specs]


def round_items(bank: Bank, spec: RoundSpec) -> list[Item]:
    """The items of a round, exactly as a learner playing it would get them."""
    return build_round(bank, spec, prediction_items(spec.seed))
