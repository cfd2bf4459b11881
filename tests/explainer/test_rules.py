"""The chat's rules (explainer/rules.py) on readings built by hand: each threshold decides at its value and
not a hair below it. No model runs here, so a changed threshold or comparison fails these tests by itself."""

from __future__ import annotations

import pytest

from kqv_demo.explainer.reading import Candidate, Part, Reading
from kqv_demo.explainer.rules import THRESHOLDS, asserts_truth
from kqv_demo.explainer.stance import read_cues
from kqv_demo.explainer.statements import Statement

TRUTH = "Each query is compared with every key by a scaled dot product."
WRONG = "Queries and keys are compared with KL divergence."
HAIR = 0.005


def reading(truth_asserts: float, truth_similarity: float, misconception_asserts: float,
            said: str = TRUTH) -> Reading:
    """A message that says `said`, read as asserting the truth and a misconception this surely."""
    cues = read_cues(said)
    truth = Statement("truth:scores:0", "truth", TRUTH, ("score",))
    wrong = Statement("misconception:kl", "misconception", WRONG, ("score",), claim_id="kl")
    candidates = [
        Candidate(truth, truth_similarity, 0, TRUTH, "states", 0.0, truth_asserts, 0.0, 0.0, 1 - truth_asserts),
        Candidate(wrong, 0.40, 0, WRONG, "states", 0.0, misconception_asserts, 0.0, 0.0, 1 - misconception_asserts),
    ]
    return Reading(said, cues, [Part(said, cues)], True, truth_similarity, candidates, [])


SURE, CLOSE, CLEAN = THRESHOLDS.affirm_asserts, THRESHOLDS.affirm_similarity, THRESHOLDS.affirm_misconception_at_most


def test_a_message_that_surely_asserts_a_close_truth_and_no_misconception_is_agreed_with():
    decision = asserts_truth(reading(SURE, CLOSE, CLEAN), THRESHOLDS)
    assert decision is not None and decision.stance == "affirm" and decision.candidate.statement.kind == "truth"


@pytest.mark.parametrize("truth_asserts, truth_similarity, misconception_asserts, why", [
    (SURE - HAIR, CLOSE, CLEAN, "not quite sure it asserts the truth"),
    (SURE, CLOSE - HAIR, CLEAN, "not quite close to the truth"),
    (SURE, CLOSE, CLEAN + HAIR, "may assert a misconception as well"),
])
def test_a_hair_short_of_any_affirm_threshold_is_not_agreed_with(truth_asserts, truth_similarity,
                                                                 misconception_asserts, why):
    assert asserts_truth(reading(truth_asserts, truth_similarity, misconception_asserts), THRESHOLDS) is None, why


def test_an_open_question_or_the_opposite_polarity_is_never_agreed_with():
    asked = "How is each query compared with every key?"
    assert asserts_truth(reading(0.99, 0.99, 0.0, said=asked), THRESHOLDS) is None
    negated = "Each query is not compared with every key by a scaled dot product."
    assert asserts_truth(reading(0.99, 0.99, 0.0, said=negated), THRESHOLDS) is None
