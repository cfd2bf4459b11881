"""Create a class round, let students join it, check the instructor key, run the class.

Every student of a class gets the same items in the same order (drawn once, at creation, and
stored with the class): answers compare item by item, and a handout or an LMS export of the
round matches what the class saw. One round per student per class: joining again resumes it.

The instructor decides who plays and when: at most `max_students` join (300 unless set), joining
can be closed once the class is in, a student can be removed (out of the results and the CSV,
and cannot rejoin), and a round created with `wait_for_start=True` shows no question until the
instructor starts it (so nobody can scout the questions or the time limit the night before);
a time limit then counts from each student's start: the moment of the instructor's start for
those who were waiting, the moment they joined for those who join later.
"""

from __future__ import annotations

from kqv_demo.classroom.codes import format_code, new_code, normalise_code
from kqv_demo.classroom.keys import dummy_hash, hash_key, key_matches, new_key
from kqv_demo.content.loader import Bank
from kqv_demo.errors import UserInputError
from kqv_demo.quiz.resolve import round_items
from kqv_demo.quiz.rounds import MAX_ROUND_ITEMS, RoundSpec
from kqv_demo.storage import DEFAULT_MAX_STUDENTS, Membership, Store, StoredClass

CODE_ATTEMPTS = 5
MAX_STUDENTS_LIMIT = 2000  # the most an instructor can allow into one class round


def create_class(store: Store, bank: Bank, spec: RoundSpec, *, max_students: int = DEFAULT_MAX_STUDENTS,
                 wait_for_start: bool = False) -> tuple[str, str]:
    """Draw the round's items once and store the class. Returns (round code, instructor key).

    The key is returned only here; the database keeps a salted hash of it. `wait_for_start`: students
    who join see no question until `start_class`.
    """
    if not 1 <= max_students <= MAX_STUDENTS_LIMIT:
        raise UserInputError(f"A class round takes 1 to {MAX_STUDENTS_LIMIT} students, not {max_students}.")
    items = round_items(bank, spec)
    if not items:
        raise UserInputError("No question matches this round's choices. Pick more claims, topics or item types.")
    key = new_key()
    stored_spec = spec.model_dump(mode="json", exclude={"item_ids"})
    for _ in range(CODE_ATTEMPTS):
        code = new_code()
        if store.create_class(code, spec.title, stored_spec, [item.id for item in items], hash_key(key),
                              max_students=max_students, start_now=not wait_for_start):
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
    """The learner's round of this class (its key): new on the first visit, the same one afterwards.

    A clear refusal (UserInputError) when the class is full, joining is closed or the learner was removed.
    """
    stored = open_class(store, typed_code)
    spec = class_spec(stored)
    return store.join_class(stored.id, learner_id, spec.model_dump(mode="json"), stored.item_ids)


def admission(store: Store, round_id: int) -> Membership | None:
    """For a round being played: its class and the student's standing in it (None: not a class round).

    `membership.removed`: the student may not go on; `membership.stored_class.waiting`: not started yet.
    """
    return store.membership(round_id)


# --- the instructor's controls (call after verify_key) ------------------------------------------
def start_class(store: Store, code: str) -> bool:
    """Let the students in now. False when it had started already."""
    return store.start_class(open_class(store, code).id)


def set_joining(store: Store, code: str, open_: bool) -> None:
    """Close joining (students already in go on) or open it again."""
    store.set_joining(open_class(store, code).id, open_)


def remove_student(store: Store, code: str, round_id: int) -> bool:
    """Remove one student's round from the class: their answers leave the results and the CSV."""
    return store.remove_member(open_class(store, code).id, round_id)


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
