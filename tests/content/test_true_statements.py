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
    w_v = block.self_attn.v_proj.weight.detach()  # a parameter: its products would carry a grad to no use
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


# --- tokens, positions and the MLP: the figures the topic pages quote about our models ---------------


def summary_says(topic: str, text: str) -> str:
    """`text` as the topic's summary says it (line breaks in the YAML count as spaces)."""
    summary = " ".join(BANK.topics[topic].summary.split())
    assert text in summary, f"{topic}'s summary no longer says: {text}"
    return text


def test_minilm_has_a_wordpiece_vocabulary_of_30522_tokens(runtime: Runtime):
    minilm = runtime.minilm
    vocabulary = minilm.model.config.vocab_size
    summary_says("tokens", f"MiniLM uses BERT's WordPiece vocabulary of {vocabulary:,} tokens.")
    assert len(minilm.tokenizer) == vocabulary == minilm.model.embeddings.word_embeddings.num_embeddings
    assert minilm.tokenizer.tokenize("tokenization")[1:] and all(  # WordPiece marks a word's later pieces with ##
        piece.startswith("##") for piece in minilm.tokenizer.tokenize("tokenization")[1:])


def test_minilm_adds_learned_absolute_position_embeddings_for_up_to_512_positions(runtime: Runtime):
    model = runtime.minilm.model
    embeddings = model.embeddings
    positions = embeddings.position_embeddings.num_embeddings
    summary_says("positions", f"BERT and MiniLM add **learned absolute** position embeddings (up to {positions} "
                              "positions).")
    assert model.config.position_embedding_type == "absolute"
    assert positions == model.config.max_position_embeddings == 512
    # learned: a trained weight of the model (a fixed sinusoidal table would be a buffer, not a parameter)
    learned = dict(model.named_parameters())["embeddings.position_embeddings.weight"]
    assert learned is embeddings.position_embeddings.weight
    # added: the embedding layer's output is LayerNorm(token + segment + position), in the model's own order of
    # adding (the same float32 operations on the same numbers, so the same bits on any CPU)
    ids, _ = runtime.tokenize("The bank of the river", runtime.minilm.name)
    tokens = torch.tensor([ids])
    with torch.inference_mode():
        added = (embeddings.word_embeddings(tokens) + embeddings.token_type_embeddings(torch.zeros_like(tokens))
                 + embeddings.position_embeddings(torch.arange(len(ids))[None]))
        assert torch.equal(embeddings(input_ids=tokens), embeddings.LayerNorm(added))


def test_smollm2_gives_bank_with_and_without_a_leading_space_different_ids(runtime: Runtime):
    statement("tokens", "In SmolLM2, \" bank\" with a leading space and \"bank\" without one are different tokens "
                        "with different ids.")
    spaced, bare = runtime.tokenize(" bank")[0], runtime.tokenize("bank")[0]
    assert len(spaced) == len(bare) == 1, "each is one token"
    assert spaced != bare


def test_smollm2_mlp_is_swiglu_with_a_silu_gate(runtime: Runtime):
    statement("feed-forward", "SmolLM2's MLP uses SwiGLU: a SiLU-activated gate projection multiplied element-wise "
                              "by a second linear projection.")
    config = runtime.smollm2.model.config
    assert config.hidden_act == "silu"
    summary_says("feed-forward", "$576 \\to 1536 \\to 576$ with no biases")
    for layer in runtime.smollm2.model.model.layers:
        mlp = layer.mlp
        linears = {name for name, module in mlp.named_children() if isinstance(module, torch.nn.Linear)}
        assert linears == {"gate_proj", "up_proj", "down_proj"}
        assert (mlp.gate_proj.in_features, mlp.gate_proj.out_features) == (config.hidden_size, config.intermediate_size)
    # what the block computes: down(SiLU(gate x) ⊙ up x), exactly (the same float32 operations on one CPU)
    mlp = runtime.smollm2.model.model.layers[4].mlp
    x = torch.randn(5, config.hidden_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        swiglu = mlp.down_proj(torch.nn.functional.silu(mlp.gate_proj(x)) * mlp.up_proj(x))
        assert torch.equal(mlp(x), swiglu)


def test_the_mlps_hold_three_quarters_of_each_layer_and_80m_of_the_134_5m_parameters(runtime: Runtime):
    statement("feed-forward", "The MLP blocks hold most of SmolLM2's parameters, about three quarters of the weights "
                              "in each layer.")
    model = runtime.smollm2.model
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    layer, mlp, attention = [count(m) for m in (model.model.layers[0], model.model.layers[0].mlp,
                                                 model.model.layers[0].self_attn)]
    assert all(count(block) == layer and count(block.mlp) == mlp for block in model.model.layers)
    mlps, total = mlp * len(model.model.layers), count(model)  # tied embeddings counted once
    latex = lambda n: f"{n:,}".replace(",", "{,}")  # noqa: E731
    summary_says("feed-forward", f"Its three matrices hold $3 \\times {model.config.hidden_size} \\times "
                                 f"{model.config.intermediate_size} = {latex(mlp)}$ weights per layer, about three "
                                 f"quarters of the layer's {layer:,} (attention has {attention:,}), and about "
                                 f"{mlps / 1e6:.0f}M of the model's {total / 1e6:.1f}M parameters.")
    assert round(mlp / layer, 2) == 0.75, "about three quarters of each layer"
    assert mlps > total / 2, "most of the parameters"
