"""12 layers is not a standard: live depths and parameter counts agree with the loaded models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kqv_demo.demos import depth_table as demo_module
from kqv_demo.runtime import Runtime

DEMO = demo_module.DEMO


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


def test_live_rows_are_read_from_the_configs(runtime: Runtime, result):
    live = {model: layers for model, layers, is_live in zip(result.models, result.layers, result.live) if is_live}
    small = runtime.smollm2.model.config.num_hidden_layers
    mini = runtime.minilm.model.config.num_hidden_layers
    assert live == {"SmolLM2-135M (loaded here)": small, "all-MiniLM-L6-v2 (loaded here)": mini}
    assert (result.smollm2_layers, result.minilm_layers) == (small, mini)
    # content/claims/most-models-use-twelve-layers.yaml:
    # "SmolLM2-135M has num_hidden_layers = 30, all-MiniLM-L6-v2 has 6"
    assert (small, mini) == (30, 6)


def test_every_published_row_has_a_source(result):
    published = [i for i, live in enumerate(result.live) if not live]
    assert len(published) == len(demo_module.PUBLISHED) >= 8
    for i in published:
        source = result.sources[i]
        assert "et al. 20" in source and ("Table" in source or "§" in source or "config" in source), source
        assert result.layers[i] > 0 and result.years[i] >= 2018


def test_published_depths_quoted_in_the_claims(result):
    # content/claims/most-models-use-twelve-layers.yaml (truth and quiz) and
    # transformers-have-a-fixed-number-of-layers.yaml
    layers = dict(zip(result.models, result.layers))
    assert layers["GPT-3 175B"] == 96 and layers["Llama-3.1-405B"] == 126
    assert layers["BERT-base"] == 12 and layers["BERT-large"] == 24 and layers["GPT-2 XL"] == 48
    assert layers["Llama-2-70B"] == 80
    assert sorted(result.with_twelve) == ["BERT-base", "GPT-2 small"]
    assert DEMO.status(result)[0]


def test_smollm2_parameter_count_matches_an_independent_count(runtime: Runtime, result):
    model = runtime.smollm2.model
    c = model.config
    q_out, kv_out = c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim
    attention = c.hidden_size * q_out * 2 + c.hidden_size * kv_out * 2  # q, o; k, v (no biases)
    mlp = 3 * c.hidden_size * c.intermediate_size  # gate, up, down
    norms = 2 * c.hidden_size
    embedding = c.vocab_size * c.hidden_size
    head = 0 if c.tie_word_embeddings else embedding
    by_formula = embedding + head + c.num_hidden_layers * (attention + mlp + norms) + c.hidden_size
    assert result.smollm2_parameters == by_formula
    assert result.smollm2_parameters == sum(p.numel() for p in model.parameters())  # tied weight once
    assert (result.smollm2_attention_per_layer, result.smollm2_mlp_per_layer, result.smollm2_norm_per_layer) == (
        attention, mlp, norms)
    assert result.smollm2_embedding_parameters == embedding
    assert result.smollm2_tied_embeddings is bool(c.tie_word_embeddings)


def test_per_layer_numbers_quoted_in_the_claims(result):
    # content/claims/layer-count-is-a-hyperparameter.yaml: "884,736 attention and 2,654,208 MLP weights plus
    # 1,152 norm weights, 3,540,096 in all ... the tied 49,152 x 576 embedding adds 28.3 M, about 134.5 M in total"
    assert result.smollm2_attention_per_layer == 884_736
    assert result.smollm2_mlp_per_layer == 2_654_208
    assert result.smollm2_norm_per_layer == 1_152
    assert result.smollm2_per_layer == 3_540_096
    assert round(result.smollm2_embedding_parameters / 1e6, 1) == 28.3
    assert round(result.smollm2_parameters / 1e6, 1) == 134.5


def test_minilm_parameter_count(runtime: Runtime, result):
    assert result.minilm_parameters == sum(p.numel() for p in runtime.minilm.model.parameters())


def test_the_prompt_is_unused(runtime: Runtime, result):
    assert DEMO.prompt_label == ""
    other = DEMO.run(runtime, "Anything at all")
    for field in dataclasses.fields(result):
        assert np.array_equal(getattr(other, field.name), getattr(result, field.name)) or \
            getattr(other, field.name) == getattr(result, field.name)


def test_chart_highlights_the_live_models_and_words_describe_this_run(result):
    spec = DEMO.chart(result).to_dict()
    values = spec["datasets"][next(iter(spec["datasets"]))]
    assert sorted(v["model"] for v in values if v["from"] == "loaded here (config)") == [
        "SmolLM2-135M (loaded here)", "all-MiniLM-L6-v2 (loaded here)"]
    bars = spec["layer"][0]
    assert bars["mark"]["type"] == "bar"
    assert bars["encoding"]["y"]["axis"]["labelLimit"] == 0, "model names are never cut off"
    assert spec["width"] <= 560, "room for the longest name within the app's ~800 px column"
    text = DEMO.explain(result)
    assert f"{result.smollm2_parameters:,}" in text and "BERT-base and GPT-2 small" in text
    assert 60 <= len(text.split()) <= 150
