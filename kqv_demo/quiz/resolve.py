"""Name a round on the command line or in a link: a built-in id, a round file, or a class round code."""

from __future__ import annotations

from pathlib import Path

from kqv_demo.content.loader import Bank
from kqv_demo.errors import UserInputError
from kqv_demo.quiz.items import Item
from kqv_demo.quiz.predict import prediction_items
from kqv_demo.quiz.round_files import load_round_file, load_round_files
from kqv_demo.quiz.rounds import BUILT_IN, RoundSpec, build_round
from kqv_demo.storage import Store


def resolve_round(bank: Bank, name: str, store: Store | None = None) -> RoundSpec:
    """The round called `name`, tried in this order: a built-in id (core-10), a path to a round
    file (my-round.yaml), the id of a file in content/rounds/ (workshop-45), a class round code
    (K7P-QX4-MRT, looked up in `store`, or the default database when None).

    A class round's spec lists the class's items (`item_ids`), so `round_items` gives exactly them.
    """
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
    files = load_round_files(bank)
    if name in files.specs:
        return files.specs[name]
    return _class_round(name, store, files.specs)


def _class_round(name: str, store: Store | None, file_ids) -> RoundSpec:
    from kqv_demo.classroom.classes import class_spec
    from kqv_demo.classroom.codes import normalise_code

    try:
        code = normalise_code(name)
    except UserInputError:
        known = ", ".join([*BUILT_IN, *file_ids])
        raise UserInputError(f"There is no round called {name!r}. Rounds: {known}; or a round file path, "
                             "or a class round code.") from None
    stored = (store or Store()).class_by_code(code)
    if stored is None:
        raise UserInputError(f"There is no round called {name!r}, and no class round with that code.")
    return class_spec(stored)


def round_items(bank: Bank, spec: RoundSpec) -> list[Item]:
    """The items of a round, exactly as a learner playing it would get them."""
    return build_round(bank, spec, prediction_items(spec.seed))
