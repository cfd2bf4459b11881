"""One query per token, per head, per layer: counts and widths read from the real model."""

from __future__ import annotations

import numpy as np
import pytest

from kqv_demo.demos import query_count
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime

DEMO = query_count.DEMO


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


@pytest.mark.parametrize("prompt",
                         [None, "The cat sat", "Why is the sky blue? Explain it to a child in two sentences."])
def test_one_query_per_token_per_head_per_layer(runtime: Runtime, config, prompt):
    prompt = prompt or DEMO.default_prompt
    result = DEMO.run(runtime, prompt)
    tokens = len(runtime.tokenize(prompt)[0])
    assert result.n_tokens == tokens
    assert result.n_layers == config.num_hidden_layers
    assert result.queries == tokens * config.num_hidden_layers * config.num_attention_heads
    assert result.keys == result.values == tokens * config.num_hidden_layers * config.num_key_value_heads
    assert result.d_head == config.head_dim
    assert result.norms.shape == (config.num_hidden_layers, config.num_attention_heads, tokens)
    assert query_count.status(result)[0]


def test_the_seven_token_example_of_the_claim(runtime: Runtime, result):
    # content/claims/prompt-encoded-as-one-query-vector.yaml: "a 7-token prompt yields
    # 7 × 30 × 9 = 1,890 query vectors of 64 numbers" (the claim names no prompt; the default has 7 tokens).
    assert len(runtime.tokenize(DEMO.default_prompt)[0]) == 7
    assert result.queries == 1890
    assert result.d_head == 64


def test_the_cat_sat_projection_widths(runtime: Runtime, config):
    # content/claims/llms-do-not-use-database-style-kqv.yaml: for "The cat sat" the layer-0 projections
    # return [3, 576], [3, 192] and [3, 192] (576 = 9 heads × 64, 192 = 3 heads × 64).
    result = DEMO.run(runtime, "The cat sat")
    assert result.n_tokens == 3
    assert result.query_shape == (9, 3, 64) and result.key_shape == result.value_shape == (3, 3, 64)
    assert (result.query_width, result.key_width, result.value_width) == (576, 192, 192)
    hidden = config.hidden_size
    assert result.projection_shapes == [
        (config.num_attention_heads * config.head_dim, hidden),
        (config.num_key_value_heads * config.head_dim, hidden),
        (config.num_key_value_heads * config.head_dim, hidden),
    ]


def test_queries_are_distinct_vectors_not_one_prompt_vector(result):
    # Every token's query has its own length somewhere: they are not copies of a single vector.
    for layer in range(result.n_layers):
        assert np.ptp(result.norms[layer], axis=-1).max() > 1e-3, layer
    assert (result.norms > 0).all()


def test_head_and_average_choose_what_the_chart_shows(runtime: Runtime, result):
    np.testing.assert_array_equal(result.shown, result.norms[:, 0])
    other = DEMO.run(runtime, head=5)
    np.testing.assert_array_equal(other.shown, other.norms[:, 5])
    mean = DEMO.run(runtime, average=True)
    np.testing.assert_allclose(mean.shown, mean.norms.mean(axis=1))
    assert "mean over" in query_count.explain(mean)


def test_explanation_headline_and_chart_use_this_run(result):
    text = query_count.explain(result)
    assert "1,890 query vectors" in text and "7 tokens × 30 layers × 9 query heads" in text
    assert 60 <= len(text.split()) <= 150
    assert dict(query_count.headline(result))["Query vectors"] == "1,890"
    spec = query_count.chart(result).to_dict()
    assert spec["encoding"]["x"]["sort"] == result.tokens
    assert spec["encoding"]["color"]["scale"]["scheme"] == "viridis"


@pytest.mark.parametrize("prompt", [None, "The keys and values of earlier tokens are stored in a cache so that "
                                          "the model does not have to compute them again"])
def test_the_chart_labels_every_token_and_every_layer(runtime: Runtime, prompt):
    result = DEMO.run(runtime, prompt or DEMO.default_prompt)
    spec = query_count.chart(result).to_dict()
    x, y = spec["encoding"]["x"], spec["encoding"]["y"]
    assert x["axis"]["labelOverlap"] is False and y["axis"]["labelOverlap"] is False
    assert 17 * result.n_tokens <= spec["width"] <= 660, "room for each -45° label, within the column"
    assert spec["height"] >= 14 * result.n_layers, "room for each layer's label"


@pytest.mark.parametrize("params,message", [({"head": 9}, "Head 9"), ({"average": "maybe"}, "true or false")])
def test_bad_input_is_a_clear_error(runtime: Runtime, params, message):
    with pytest.raises(UserInputError, match=message):
        DEMO.run(runtime, **params)


def test_empty_prompt_is_a_clear_error(runtime: Runtime):
    with pytest.raises(UserInputError, match="empty"):
        DEMO.run(runtime, "   ")


def test_details_show_this_runs_numbers(result):
    text = query_count.details(result)
    assert "{result" not in text and "{layer" not in text
    assert "```python" in text


def test_long_prompts_chart_the_first_tokens_but_count_all(runtime: Runtime, config):
    prompt = " ".join(["the cat sat on the mat"] * 40)
    result = DEMO.run(runtime, prompt)
    assert result.n_tokens > query_count.CHART_TOKENS
    assert result.queries == result.n_tokens * config.num_hidden_layers * config.num_attention_heads
    spec = query_count.chart(result).to_dict()  # raises if over Altair's row limit
    assert spec["encoding"]["x"]["sort"] == result.tokens[: query_count.CHART_TOKENS]
    assert f"first {query_count.CHART_TOKENS} of {result.n_tokens} tokens" in spec["title"]
    # 160 labels cannot fit in the column: Vega thins them rather than the chart overflowing.
    assert spec["width"] <= 660 and spec["encoding"]["x"]["axis"]["labelOverlap"] == "greedy"
