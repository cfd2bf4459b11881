"""Name any round: a built-in id, a round file or its id (`quiz.resolve.named_round`), or a class round code."""

from __future__ import annotations

from kqv_demo.classroom.classes import class_spec
from kqv_demo.classroom.codes import normalise_code
from kqv_demo.content.loader import Bank
from kqv_demo.errors import UserInputError
from kqv_demo.quiz.resolve import named_round, round_names
from kqv_demo.quiz.rounds import RoundSpec
from kqv_demo.storage import Store


def resolve_round(bank: Bank, name: str, store: Store | None = None) -> RoundSpec:
    """The round called `name`, tried in this order: a built-in id (core-10), a path to a round
    file (my-round.yaml), the id of a file in content/rounds/ (workshop-45), a class round code
    (K7P-QX4-MRT, looked up in `store`, or the default database when None).

    A class round's spec lists the class's items (`item_ids`), so `round_items` gives exactly them.
    """
    spec = named_round(bank, name)
    if spec is not None:
        return spec
    name = name.strip()
    try:
        code = normalise_code(name)
    except UserInputError:
        raise UserInputError(f"There is no round called {name!r}. Rounds: {', '.join(round_names(bank))}; "
                             "or a round file path, or a class round code.") from None
    stored = (store or Store()).class_by_code(code)
    if stored is None:
        raise UserInputError(f"There is no round called {name!r}, and no class round with that code.")
    return class_spec(stored)
