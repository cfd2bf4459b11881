"""Round codes are short and hard to guess; instructor keys are stored hashed and checked in constant time."""

from __future__ import annotations

import math
import statistics
import time

import pytest
from sqlalchemy import select

from kqv_demo.classroom import create_class, format_code, normalise_code, verify_key
from kqv_demo.classroom.codes import ALPHABET, CODE_LENGTH, new_code
from kqv_demo.classroom.keys import ITERATIONS, hash_key, key_matches
from kqv_demo.errors import UserInputError
from kqv_demo.quiz.rounds import RoundSpec
from kqv_demo.storage import classes

SPEC = RoundSpec(id="class", title="Softmax", claims=("softmax-turns-scores-into-attention-distribution",),
                 kinds=("verdict",), count=1)


def test_codes_use_an_unambiguous_alphabet_and_have_enough_entropy():
    assert len(ALPHABET) == len(set(ALPHABET)) == 31
    assert not set("0O1IL") & set(ALPHABET)
    assert CODE_LENGTH * math.log2(len(ALPHABET)) >= 40
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000 and all(len(c) == CODE_LENGTH and set(c) <= set(ALPHABET) for c in codes)


def test_codes_are_typed_in_any_case_with_or_without_dashes():
    code = new_code()
    assert normalise_code(format_code(code).lower()) == code
    assert normalise_code(f"  {code[:4]} {code[4:]} ") == code
    for wrong in ("", "ABC", "K7P-QX4-MR0", "K7P-QX4-MRTT", "<script>"):
        with pytest.raises(UserInputError, match="is not a round code"):
            normalise_code(wrong)


def test_keys_are_salted_slow_hashes():
    first, second = hash_key("secret"), hash_key("secret")
    assert first != second and "secret" not in first
    assert ITERATIONS >= 100_000 and first.startswith(f"pbkdf2_sha256${ITERATIONS}$")
    assert key_matches("secret", first) and key_matches("secret", second)
    assert not key_matches("Secret", first) and not key_matches("secret", "garbage")


def test_the_right_key_opens_the_class_and_only_a_hash_is_stored(store, bank):
    code, key = create_class(store, bank, SPEC)
    assert len(key) >= 20
    assert verify_key(store, format_code(code).lower(), f" {key} ").code == code
    with store.engine.connect() as connection:
        stored_hash = connection.execute(select(classes.c.key_hash)).scalar_one()
    assert key not in stored_hash and key_matches(key, stored_hash)


def test_a_wrong_key_is_refused_with_the_same_message_whether_the_code_exists_or_not(store, bank):
    code, key = create_class(store, bank, SPEC)
    other_code = next(c for c in iter(new_code, None) if c != code)
    with pytest.raises(UserInputError) as wrong_key:
        verify_key(store, code, key[:-1] + ("A" if key[-1] != "A" else "B"))
    with pytest.raises(UserInputError) as unknown_code:
        verify_key(store, other_code, key)
    assert str(wrong_key.value) == f"That instructor key is not right for round {format_code(code)}."
    assert str(unknown_code.value) == f"That instructor key is not right for round {format_code(other_code)}."
    with pytest.raises(UserInputError, match="not right for round"):
        verify_key(store, "not a code", key)


def test_a_round_without_questions_is_refused(store, bank):
    empty = RoundSpec(id="class", title="Nothing", claims=("kl-divergence-compares-queries-and-keys",),
                      kinds=("numeric",))
    with pytest.raises(UserInputError, match="No question matches"):
        create_class(store, bank, empty)


def test_an_unknown_code_costs_a_full_key_check_like_a_wrong_key(store, bank):
    """Without the dummy hash an unknown code would be refused ~1000 times faster than a wrong key, which
    tells a guesser which codes exist. Timed as a ratio of medians (the pbkdf2 check dominates both: about
    0.1 s here, against ~1 ms for the lookup), so the bound holds on a slow or busy machine alike."""
    code, key = create_class(store, bank, SPEC)
    other_code = next(c for c in iter(new_code, None) if c != code)
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")

    def refused_in(typed_code: str, typed_key: str) -> float:
        started = time.perf_counter()
        with pytest.raises(UserInputError):
            verify_key(store, typed_code, typed_key)
        return time.perf_counter() - started

    wrong_key = statistics.median(refused_in(code, wrong) for _ in range(5))
    unknown_code = statistics.median(refused_in(other_code, key) for _ in range(5))
    assert 0.3 < unknown_code / wrong_key < 3.0, (unknown_code, wrong_key)
