"""Logit lens: the final-layer lens is the model's output; " Paris" appears only at the end; KL of a skip."""

from __future__ import annotations

import pytest
import torch

from kqv_demo import numerics
from kqv_demo.demos import logit_lens
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime
from tests.quoted import assert_quoted

DEMO = logit_lens.DEMO


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


def test_the_lens_after_the_last_layer_is_the_models_output(runtime: Runtime, result):
    assert result.n_layers == runtime.smollm2.model.config.num_hidden_layers
    assert len(result.p_target) == result.n_layers + 1  # embeddings + one state per layer
    # the lens unembeds 31 + T states in one product, the model 1: other kernels, so within LOGIT_NOISE
    assert result.lens_max_diff <= numerics.LOGIT_NOISE
    assert abs(result.p_target[-1] - result.model_p_target) <= numerics.probability_noise(result.model_p_target)
    assert result.top_tokens[-1] == result.model_top_token


def test_the_lens_needs_the_final_norm(runtime: Runtime):
    """A control: without the final RMSNorm the last layer's state does not give the model's logits."""
    trace = runtime.trace(DEMO.default_prompt)
    hidden = trace[f"blocks.{trace.model.n_layers - 1}.resid_post"][-1]
    raw = hidden @ runtime.parameter("model.embed_tokens.weight").T
    assert float((raw - trace.logits[-1]).abs().max()) > 1
    assert float((logit_lens.unembed(runtime, hidden) - trace.logits[-1]).abs().max()) <= 1e-3


def test_the_paris_probabilities_quoted_in_the_bank(result):
    # content/claims/later-layers-barely-change-the-representation.yaml (and comparing-layers-to-exit-early-
    # is-a-future-idea.yaml): P(" Paris") is 0.0000 through layer 26, 0.011 at layer 28, 0.070 at layer 29 and
    # 0.77 at layer 30. Layer L = after L blocks (index L of p_target; 0 = embeddings). Each quote must hold
    # on every CPU: 0.7725 is 5e-5 from where 0.773 turns into 0.772, less than the rounding of a pass.
    assert result.target == " Paris"
    for layer, quoted in [*((layer, "0.0000") for layer in range(26 + 1)), (28, "0.011"), (29, "0.070"), (30, "0.77")]:
        p = float(result.p_target[layer])
        assert_quoted(p, quoted, numerics.probability_noise(p), f'P(" Paris") after {layer} layers')
    assert result.model_top_token == " Paris" and result.target_top1_from == result.n_layers


def test_the_embedding_lens_echoes_the_input_token(result):
    # runtime.md / comparing-layers-to-exit-early-is-a-future-idea.yaml: with tied embeddings the lens on
    # the embedding output predicts the current input token with p ≈ 1.
    assert result.top_tokens[0] == result.tokens[-1]
    assert result.top_probs[0] > 0.99
    assert result.embedding_matches >= len(result.tokens) - 1


PROMPTS = [
    "The capital of France is", "The Eiffel Tower is located in the city of", "My favourite colour is",
    "Two plus two equals", "The cat sat on the", "Water boils at a temperature of", "Once upon a",
    "The opposite of hot is", "She opened the door and", "The first letter of the alphabet is",
]


def test_a_naive_exit_from_the_embeddings_fails_on_10_prompts(runtime: Runtime):
    # comparing-layers-to-exit-early-is-a-future-idea.yaml: "exits immediately and agreed with the full
    # model on 0 of 10 prompts" (our own 10 prompts; the claim does not list its prompts).
    agreed = 0
    for prompt in PROMPTS:
        result = DEMO.run(runtime, prompt)
        assert result.exit_from_embeddings == 0, prompt
        agreed += result.top_tokens[0] == result.model_top_token
    assert agreed == 0


def test_a_naive_exit_from_layer_one_on_is_wrong_here(result):
    assert result.exit_layer is not None and 1 <= result.exit_layer < result.n_layers
    # the exit layer is the same on every CPU: no top-1 probability is within its rounding of the threshold
    noise = numerics.probability_noise(result.exit_threshold)
    assert result.top_probs[result.exit_layer] > result.exit_threshold + noise
    assert all(p < result.exit_threshold - noise for p in result.top_probs[1:result.exit_layer])
    assert result.exit_token == result.top_tokens[result.exit_layer] != result.model_top_token
    assert not result.exit_agrees


@pytest.mark.parametrize("skip_layer", [0, 15, 29])
def test_skipping_a_block_changes_the_distribution(runtime: Runtime, skip_layer: int):
    result = DEMO.run(runtime, skip_layer=skip_layer)
    # clearly changed: beyond what rounding alone could make of two passes (kqv_demo.numerics)
    assert result.kl_skip_nats > numerics.log_probability_noise()
    noise = numerics.probability_noise(result.p_target_skipped) + numerics.probability_noise(result.model_p_target)
    assert abs(result.p_target_skipped - result.model_p_target) > noise


def test_skipping_the_last_block_is_the_lens_after_the_one_before(runtime: Runtime):
    result = DEMO.run(runtime, skip_layer=29)
    # the same state unembedded by two code paths (the lens, the model's last norm and head): LOGIT_NOISE
    assert (abs(result.p_target_skipped - float(result.p_target[29]))
            <= numerics.probability_noise(result.p_target_skipped))
    assert result.skipped_top_token == result.top_tokens[29]


def test_kl_is_computed_full_to_skipped_in_nats(runtime: Runtime, result):
    full = torch.log_softmax(runtime.trace(DEMO.default_prompt).logits[-1], dim=-1)
    skipped = torch.log_softmax(runtime.trace(
        DEMO.default_prompt,
        interventions={f"blocks.{result.skip_layer}.resid_post": lambda output, block_input: block_input},
    ).logits[-1], dim=-1)
    expected = torch.nn.functional.kl_div(skipped, full, log_target=True, reduction="sum")
    # The demo runs on from the skipped block's input, this test the whole model: other passes. Each
    # log-probability moves by at most 2·LOGIT_NOISE, so KL = Σ p·(log p − log q) by at most that times
    # (2 + Σ p·|log p − log q|) (kqv_demo.numerics).
    noise = numerics.log_probability_noise() * (2 + float((full.exp() * (full - skipped).abs()).sum()))
    assert abs(result.kl_skip_nats - float(expected)) <= noise
    reverse = float((skipped.exp() * (skipped - full)).sum())
    assert abs(reverse - result.kl_skip_nats) > 2 * noise, "KL is not symmetric"


@pytest.mark.parametrize("target,message", [(" Parisian", "is 2 tokens"), ("", "empty")])
def test_a_target_that_is_not_one_token_is_a_clear_error(runtime: Runtime, target, message):
    with pytest.raises(UserInputError, match=message):
        DEMO.run(runtime, target=target)


def test_explanation_and_chart_describe_this_run(result):
    text = logit_lens.explain(result)
    assert f"{result.p_target[-1]:.3f}" in text and "nats" in text and "does not agree" in text
    assert 60 <= len(text.split()) <= 150
    spec = logit_lens.chart(result).to_dict()
    assert len(spec["vconcat"]) == 2
