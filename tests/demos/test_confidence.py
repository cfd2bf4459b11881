"""The model's confidence is readable: next-token probabilities, entropy, temperature, top-p, and
the model's own ranking of candidate answers (computed, not asked for)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kqv_demo import numerics
from kqv_demo.demos import confidence
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime
from tests.quoted import assert_quoted

DEMO = confidence.DEMO
EIFFEL = "The Eiffel Tower is located in the city of"


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


def _next_token_probabilities(runtime: Runtime, prompt: str) -> torch.Tensor:
    """An independent read of the model: one plain trace of the prompt, softmax of the last logits."""
    return torch.softmax(runtime.trace(prompt, names_filter=lambda name: False).logits[-1].double(), dim=-1)


def test_p_paris_after_the_capital_of_france_is_as_quoted(result):
    # content/claims/pre-queries-guide-model-to-right-keys.yaml: P(" Paris" | "The capital of France is") = 0.77
    assert result.top_tokens[0] == " Paris"
    p_paris = result.probability_of(" Paris")
    assert_quoted(p_paris, "0.77", numerics.probability_noise(p_paris), 'P(" Paris")')
    paris = result.candidates.index("Paris")
    assert result.candidate_tokens[paris] == [" Paris"]
    # The same logits, read twice: a float32 log-softmax over the 49,152-token vocabulary for the candidate,
    # a float64 softmax for the top-10. That sum's rounding differs between CPUs (1.5e-5 here with AVX2), so
    # they agree to within the probability noise, not to a fixed 1e-5 (kqv_demo.numerics).
    assert abs(result.candidate_probs[paris] - p_paris) <= numerics.probability_noise(p_paris)


def test_p_paris_after_the_eiffel_tower_prompt_as_quoted(runtime: Runtime):
    # content/claims/llms-cannot-report-confidence-scores.yaml and response-sampled-from-primed-representations.yaml:
    # P(" Paris" | "The Eiffel Tower is located in the city of") = 0.70
    eiffel = DEMO.run(runtime, EIFFEL)
    p_paris = eiffel.probability_of(" Paris")
    assert_quoted(p_paris, "0.70", numerics.probability_noise(p_paris), 'P(" Paris")')
    assert eiffel.model_ranking[0] == "Paris"


def test_the_distribution_is_the_models_own(runtime: Runtime, result):
    probabilities = _next_token_probabilities(runtime, DEMO.default_prompt)
    config = runtime.smollm2.model.config
    assert result.vocab_size == config.vocab_size == probabilities.numel()
    top = torch.topk(probabilities, len(result.top_tokens))
    # the demo reads the prompt in a tree-masked pass with its candidates, we in a plain one: other kernels
    assert (np.abs(result.top_probs - top.values.numpy()) <= numerics.probability_noise(result.top_probs)).all()
    assert np.all(np.diff(result.top_probs) <= 0)
    nats = float(-(probabilities * probabilities.clamp_min(1e-300).log()).sum())
    assert abs(result.entropy_nats - nats) <= numerics.entropy_noise(nats)
    assert result.entropy_bits == pytest.approx(result.entropy_nats / math.log(2), rel=1e-9)
    assert 0 < result.entropy_bits < math.log2(config.vocab_size)


def test_temperature_reshapes_but_never_reorders(runtime: Runtime, result):
    np.testing.assert_allclose(result.top_probs_tempered, result.top_probs, atol=1e-12)  # T = 1 changes nothing
    cold = DEMO.run(runtime, temperature=0.5)
    hot = DEMO.run(runtime, temperature=2.0)
    for tempered in (cold, hot):
        assert tempered.tempered_top_tokens == tempered.top_tokens
        assert np.all(np.diff(tempered.top_probs_tempered) <= 0)
    assert cold.tempered_entropy_bits < result.entropy_bits < hot.tempered_entropy_bits
    assert cold.top_probs_tempered[0] > result.top_probs[0] > hot.top_probs_tempered[0]
    assert cold.nucleus_size <= result.nucleus_size <= hot.nucleus_size


# Where the cumulative mass crosses top_p decides the nucleus, so the size is the same on every CPU only if
# the crossing is clear of the probabilities' rounding. In a flat tail it is not: at T = 1.3 the 745th and
# 746th tokens take the mass from 0.89994 to 0.90001 (top_p 0.9), and another CPU may need one token more.
# These settings cross clearly (the last assertion checks it).
@pytest.mark.parametrize("temperature,top_p", [(1.0, 0.5), (1.0, 0.8), (1.0, 0.9), (1.3, 0.5)])
def test_the_nucleus_is_the_smallest_set_reaching_top_p(runtime: Runtime, temperature: float, top_p: float):
    run = DEMO.run(runtime, temperature=temperature, top_p=top_p)
    probabilities = torch.softmax(
        runtime.trace(DEMO.default_prompt, names_filter=lambda n: False).logits[-1].double() / temperature, dim=-1
    )
    ordered = torch.sort(probabilities, descending=True).values
    mass, short_of_it = float(ordered[: run.nucleus_size].sum()), float(ordered[: run.nucleus_size - 1].sum())
    assert run.nucleus_mass >= top_p
    assert abs(run.nucleus_mass - mass) <= numerics.probability_noise(mass)  # another pass (tree mask)
    # the smallest set on every CPU: top_p is not within the rounding of either cumulative mass
    assert short_of_it + numerics.probability_noise(short_of_it) < top_p < mass - numerics.probability_noise(mass)


def test_nucleus_on_a_small_distribution():
    assert confidence.nucleus(torch.tensor([0.5, 0.3, 0.2]), 0.75) == (2, pytest.approx(0.8))
    assert confidence.nucleus(torch.tensor([0.5, 0.3, 0.2]), 0.4)[0] == 1


def test_candidate_scores_match_token_by_token_passes(runtime: Runtime, result):
    """Recompute log P(" Marseille" | prompt) with one forward pass per token."""
    index = result.candidates.index("Marseille")
    assert len(result.candidate_tokens[index]) > 1, "the multi-token case is the interesting one"
    text, total = DEMO.default_prompt, 0.0
    for token in result.candidate_tokens[index]:
        probabilities = _next_token_probabilities(runtime, text)
        token_id = runtime.tokenize(text + token)[0][-1]
        total += math.log(float(probabilities[token_id]))
        text += token
    # one tree-masked pass against three plain ones: each token's log P within its rounding (kqv_demo.numerics)
    tokens = len(result.candidate_tokens[index])
    assert abs(result.candidate_logprobs[index] - total) <= numerics.log_probability_noise(tokens)
    assert abs(math.log(result.candidate_probs[index]) - total) <= numerics.log_probability_noise(tokens)


def test_the_models_own_ranking_is_sorted_by_log_probability(result):
    scores = dict(zip(result.candidates, result.candidate_logprobs))
    assert result.model_ranking == sorted(result.candidates, key=lambda name: -scores[name])
    assert all(lp < 0 for lp in result.candidate_logprobs)


def test_stated_order_parsing():
    assert confidence.stated_order("1. Lyon 2. Paris 3. marseille", ["Paris", "Lyon", "Marseille"]) == [
        "Lyon", "Paris", "Marseille"]
    assert confidence.stated_order("Lyon, not Paris.", ["Paris", "Lyon", "Marseille"]) is None


@pytest.mark.slow
def test_asking_the_model_gives_generated_text(runtime: Runtime):
    asked = DEMO.run(runtime, ask_model=True)
    assert asked.asked and asked.model_answer
    _, _, steps = runtime.generate(runtime.chat_prompt(asked.request), confidence.MAX_ANSWER_TOKENS)
    expected = "".join(s.token for s in steps if s.token_id != runtime.smollm2.tokenizer.eos_token_id).strip()
    assert asked.model_answer == expected  # greedy: what the model writes, not a computed ranking
    assert len(steps) <= confidence.MAX_ANSWER_TOKENS
    assert asked.stated_ranking == confidence.stated_order(asked.model_answer, asked.candidates)
    assert "Asked to rank them" in DEMO.explain(asked)


def test_explanation_uses_this_runs_numbers(result):
    text = DEMO.explain(result)
    assert f"{result.top_probs[0]:.2f}" in text and f"{result.entropy_bits:.2f} bits" in text
    assert "Tian et al. 2023" in text and "Xiong et al. 2024" in text
    assert 60 <= len(text.split()) <= 150
    spec = DEMO.chart(result).to_dict()
    assert spec["encoding"]["x"]["sort"][0].endswith("·Paris")
    assert result.truncation is None


def test_a_long_prompt_is_cut_and_candidates_are_scored_after_the_kept_part(runtime: Runtime):
    long = "The history of the city is long. " * 40 + DEMO.default_prompt
    run = DEMO.run(runtime, long)
    assert run.truncation is not None and "the demos use the first" in run.truncation
    assert len(run.prompt_tokens) == len(runtime.tokenize(long)[0])
    assert np.all(np.isfinite(run.candidate_logprobs)) and np.all(run.candidate_logprobs < 0)


@pytest.mark.parametrize(
    "prompt,params,message",
    [
        ("The capital of France is ", {}, "merges with the end of the prompt"),
        (None, {"candidates": ",".join(f"c{i}" for i in range(9))}, "at most 8"),
        (None, {"temperature": 3}, "out of range"),
        (None, {"top_p": 0}, "out of range"),
        ("   ", {}, "empty"),
    ],
)
def test_bad_input_is_a_clear_error(runtime: Runtime, prompt, params, message):
    with pytest.raises(UserInputError, match=message):
        DEMO.run(runtime, prompt, **params)
