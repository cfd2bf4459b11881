"""Predict-then-observe items: the answer key is read off the real model, and it says what we teach."""

from __future__ import annotations

import pytest

from kqv_demo.content.loader import load_bank
from kqv_demo.demos import DEMOS
from kqv_demo.quiz.predict import PREDICTIONS, check_observed
from kqv_demo.runtime import Runtime

# What the model must show for each prediction: the choice that the bank's correction teaches.
EXPECTED = {
    "number-of-layers-is-decided-dynamically": "All of them, for both prompts",
    "softmax-turns-scores-into-attention-distribution": "Everything above the diagonal (weights on later tokens)",
    "keys-are-stored-concept-vectors": "No: the keys differ, because the words before it differ",
    "llms-cannot-report-confidence-scores": "Paris",
    "model-learns-from-feedback-during-conversation": "No: the weights are bit-identical",
    "response-sampled-from-primed-representations": "Exactly one: the key of the newest token",
    "kl-divergence-compares-queries-and-keys": "Softmax of scaled dot products q·k/√d",
    "bert-uses-left-and-right-context": "Same in SmolLM2, different in BERT-style MiniLM",
}


def test_at_least_six_predictions_each_on_a_real_claim_and_demo():
    bank = load_bank(dialogue=False)
    assert len(PREDICTIONS) >= 6
    assert {p.claim_id for p in PREDICTIONS} == set(EXPECTED)
    for prediction in PREDICTIONS:
        assert prediction.claim_id in bank.claims and prediction.demo_id in DEMOS
        assert len(set(prediction.choices)) == len(prediction.choices) >= 3


@pytest.mark.parametrize("prediction", PREDICTIONS, ids=lambda p: p.claim_id)
def test_the_model_shows_what_the_bank_teaches(runtime: Runtime, prediction):
    result = DEMOS[prediction.demo_id].run(runtime, prediction.prompt, **prediction.params)
    right, observed = check_observed(prediction, result, EXPECTED[prediction.claim_id])
    assert observed == EXPECTED[prediction.claim_id]
    assert right.correct and right.feedback
    wrong = next(choice for choice in prediction.choices if choice != observed)
    assert check_observed(prediction, result, wrong)[0].correct is False
