"""Create a class round, let students join it, check the instructor key.

Every student of a class gets the same items in the same order (drawn once, at creation, and
stored with the class): answers compare item by item, and a handout or an LMS export of the
round matches what the class saw. One round per student per class: joining again resumes it.
"""

from __future__ import annotations

from kqv_demo.classroom.codes import format_code, new_code, normalise_code
from kqv_demo.classroom.keys import dummy_hash, hash_key, key_matches, new_key
from kqv_demo.content.loader import Bank
from kqv_demo.errors import UserInputError
from kqv_demo.quiz.resolve import round_items
from kqv_demo.quiz.rounds import MAX_ROUND_ITEMS, RoundSpec
from kqv_demo.storage import Store, StoredClass

CODE_ATTEMPTS = 5


def create_class(store: Store, bank: Bank, spec: RoundSpec) -> tuple[str, str]:
    """Draw the round's items once and store the class. Returns (round code, instructor key).

    The key is returned only here; the database keeps a salted hash of it.
    """
    items = round_items(bank, spec)
    if not items:
        raise UserInputError("No question matches this round's choices. Pick more claims, topics or item types.")
    key = new_key()
    stored_spec = spec.model_dump(mode="json", exclude={"item_ids"})
    for _ in range(CODE_ATTEMPTS):
        code = new_code()
        if store.create_class(code, spec.title, stored_spec, [item.id for item in items], hash_key(key)):
            return code, key
    raise RuntimeError("Could not find a free round code; the codes table is suspiciously full.")


def open_class(store: Store, typed_code: str) -> StoredClass:
    """The class with this code, for a student; a clear message when there is none."""
    code = normalise_code(typed_code)
    stored = store.class_by_code(code)
    if stored is None:
        raise UserInputError(f"There is no class round {format_code(code)}. Check the code with your instructor.")
    return stored


def class_spec(stored: StoredClass) -> RoundSpec:
    """The class's round as a spec whose items are exactly the class's items."""
    return RoundSpec.model_validate({
        **stored.spec, "id": f"class-{stored.code.lower()}", "title": stored.title,
        "item_ids": stored.item_ids, "count": max(1, min(MAX_ROUND_ITEMS, len(stored.item_ids))),
    })


def join_class(store: Store, typed_code: str, learner_id: int) -> str:
    """The learner's round of this class (its key): new on the first visit, the same one afterwards."""
    stored = open_class(store, typed_code)
    spec = class_spec(stored)
    return store.join_class(stored.id, learner_id, spec.model_dump(mode="json"), stored.item_ids)


def verify_key(store: Store, typed_code: str, key: str) -> StoredClass:
    """The class, when `key` is its instructor key. The same refusal whether the code exists or not."""
    try:
        code = normalise_code(typed_code)
    except UserInputError:
        code, shown = "", typed_code.strip()[:40]
    else:
        shown = format_code(code)
    stored = store.class_by_code(code) if code else None
    matches = key_matches(key.strip(), stored.key_hash if stored else dummy_hash())
    if stored is None or not matches:
        raise UserInputError(f"That instructor key is not right for round {shown}.")
    return stored
