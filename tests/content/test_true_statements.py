"""The vetted true statements added for the value, fixed-depth and learning-at-inference topics,
each checked on the real model (or, where no model can show it, tied to the reference it rests on).
The chat agrees with these sentences, so each must hold."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kqv_demo import numerics
from kqv_demo.content.loader import load_bank
from kqv_demo.demos import DEMOS
from kqv_demo.runtime import Runtime

BANK = load_bank(dialogue=False)


def statement(topic: str, text: str) -> str:
    assert text in BANK.topics[topic].true_statements, f"{topic} no longer says: {text}"
    return text


@pytest.fixture(scope="module")
def values(runtime: Runtime):
    return DEMOS["values-not-text"].run(runtime)


@pytest.fixture(scope="module")
def no_learning(runtime: Runtime):
    return DEMOS["no-learning-at-inference"].run(runtime, max_new_tokens=3)


def test_a_heads_output_is_the_weighted_sum_of_its_values_and_keys_only_set_the_weights(values):
    statement("value", "A head's output is the attention-weighted sum of its value vectors.")
    statement("value", "The keys are used only to compute the attention weights, which then multiply the values.")
    # our weights @ V and the model's batched matmul are other kernels: within the derived float32 bound
    assert values.layer_weights_v_max_diff <= values.weights_v_tolerance, "weights @ V is every head's output"
    assert values.layer_weights_k_min_diff > 0.1, "weights @ K is no head's output"


def test_each_value_is_w_v_applied_to_its_tokens_normalised_hidden_state(runtime: Runtime):
    statement("value", "Each value vector is computed from a token's hidden state by the value projection W_V.")
    layer = 6
    trace = runtime.trace(DEMOS["values-not-text"].default_prompt,
                          names_filter=lambda name: name in (f"blocks.{layer}.resid_pre", f"blocks.{layer}.attn.v"))
    block = runtime.smollm2.model.model.layers[layer]
    with torch.inference_mode():
        normed = block.input_layernorm(trace[f"blocks.{layer}.resid_pre"])
        values = block.self_attn.v_proj(normed)
    shape = runtime.smollm2.shape
    recorded = trace[f"blocks.{layer}.attn.v"]  # [kv_heads, T, d_head]
    rebuilt = values.view(-1, shape.n_kv_heads, shape.d_head).transpose(0, 1)
    # the model's own modules, called outside its forward pass: within the float32 bound of the product
    # and of the norm's mean of squares (kqv_demo.numerics), whatever kernels this CPU picks
    w_v = block.self_attn.v_proj.weight
    magnitude = float((normed.abs() @ w_v.abs().T).max())
    noise = numerics.matmul_noise(normed, w_v.T) + numerics.sum_noise(shape.d_model, magnitude)
    assert float((rebuilt - recorded).abs().max()) <= noise


def test_the_text_comes_from_the_lm_head_not_from_the_values(values):
    statement("value", "Value vectors are internal numbers, not the output text: the text comes from the LM head, "
                       "one token at a time.")
    assert values.value_shape[-1] == values.d_head < values.hidden_size, "a value is d_head numbers"
    # the demo's product with the LM head and the model's own: other kernels, so equal up to LOGIT_NOISE
    assert values.logits_max_diff <= numerics.LOGIT_NOISE, "the LM head on the final state gives the model's own scores"
    assert values.chosen_token == values.top_tokens[0]


def test_every_input_runs_through_all_layers_once_and_the_depth_is_the_configured_one(runtime: Runtime):
    statement("fixed-depth", "A standard transformer runs every input through all of its layers, each exactly "
                             "once, however hard the input is.")
    statement("fixed-depth", "The number of layers is fixed when the model is designed, before training.")
    depth = DEMOS["fixed-depth"].run(runtime)
    assert depth.blocks_run == [depth.n_layers] * len(depth.prompts)
    assert (depth.calls_per_layer == 1).all()
    assert depth.n_layers == len(runtime.smollm2.model.model.layers) == runtime.smollm2.model.config.num_hidden_layers


def test_answering_changes_no_weight_and_only_the_cache_grows(no_learning):
    statement("learning-at-inference", "A model's weights do not change while it answers you; only the KV cache "
                                       "of the conversation grows.")
    assert no_learning.weights_unchanged
    assert (np.diff(no_learning.cache_lengths) == 1).all()


def test_what_seems_learned_lives_in_the_context(no_learning):
    statement("learning-at-inference", "What a chat model seems to learn during a conversation comes from its "
                                       "context and is gone when that context is.")
    assert no_learning.p_in_context > no_learning.p_at_load
    assert no_learning.p_after == no_learning.p_at_load


def test_learning_from_feedback_offline_rests_on_the_rlhf_paper():
    statement("learning-at-inference", "Chat models improve from user feedback only offline, when the feedback is "
                                       "used to fine-tune a new model version.")
    titles = [reference.title for reference in BANK.topics["learning-at-inference"].references]
    assert "Training language models to follow instructions with human feedback" in titles
