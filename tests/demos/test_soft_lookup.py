"""A soft lookup, not a database: every key gets a positive weight, the output mixes all values, and
only a much sharper softmax (scores × β, β ≫ 1) would approach a dict-style hard lookup."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kqv_demo import numerics
from kqv_demo.demos import soft_lookup
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime

DEMO = soft_lookup.DEMO


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


@pytest.mark.parametrize("layer,head", [(0, 0), (3, 8), (12, 4), (29, 7)])
def test_beta_1_is_the_models_own_attention(runtime: Runtime, layer: int, head: int):
    run = DEMO.run(runtime, layer=layer, head=head)
    # The demo recomputes in float64 from the model's own float32 scores, so the only difference is the
    # model's float32 softmax (and, for the output, its float32 Σ w_j v_j): bounds from kqv_demo.numerics.
    n = len(run.tokens)
    weights_noise = numerics.softmax_noise(n)
    assert run.recompute_max_diff <= weights_noise  # softmax(scores + causal mask) over the whole [T, T] matrix
    assert np.abs(run.sharp_weights - run.model_weights).max() <= weights_noise
    values = runtime.trace(DEMO.default_prompt, names_filter=lambda name: name == f"blocks.{layer}.attn.v")
    largest = float(values[f"blocks.{layer}.attn.v"].abs().max())
    assert run.output_max_diff <= n * weights_noise * largest + numerics.sum_noise(n, largest)  # Σ w_j v_j
    assert run.matches_model


def test_every_key_gets_a_positive_weight_in_every_head(runtime: Runtime):
    trace = runtime.trace(DEMO.default_prompt, names_filter=lambda name: name.endswith("attn.pattern"))
    for layer in range(trace.model.n_layers):
        last_row = trace[f"blocks.{layer}.attn.pattern"][:, -1]  # [heads, T]: the last token sees every key
        assert (last_row > 0).all(), layer
        assert (np.abs(last_row.sum(-1).numpy() - 1) <= numerics.sums_to_one_noise(last_row.shape[-1])).all()


def test_the_shown_row_is_a_blend_of_all_values(result):
    n = len(result.tokens)
    assert (result.model_weights > 0).all() and result.min_weight > 0
    assert abs(result.weight_sum - 1) <= numerics.sums_to_one_noise(n)
    p = result.model_weights.astype(np.float64)
    assert result.entropy_bits == pytest.approx(float(-(p * np.log2(p)).sum()), abs=1e-4)
    assert 0 < result.entropy_bits <= result.uniform_entropy_bits == pytest.approx(math.log2(n))
    cumulative = np.cumsum(np.sort(p)[::-1])
    assert result.tokens_for_90 == int(np.argmax(cumulative >= 0.9)) + 1
    assert result.tokens_for_90 > 1, "at the default head no single key holds 90%"
    assert result.top_index == int(np.argmax(result.scores)) == int(np.argmax(result.model_weights))
    assert result.distance_at_1 > 0.1 * result.top_value_norm, "the mix is far from the top key's value"


def test_sharpening_approaches_a_hard_lookup(result):
    assert list(result.betas) == sorted(result.betas) and 1.0 in result.betas
    assert np.all(np.diff(result.sweep_max_weight) >= -1e-12)
    assert np.all(np.diff(result.sweep_entropy_bits) <= 1e-9)
    assert np.all(np.diff(result.sweep_tokens_for_90) <= 0)
    assert result.sweep_max_weight[-1] > 0.999 and result.sweep_tokens_for_90[-1] == 1
    assert result.sweep_distance[-1] < 1e-3 * result.top_value_norm < result.distance_at_1


def test_the_limit_is_the_top_scoring_value_vector(runtime: Runtime, result):
    trace = runtime.trace(DEMO.default_prompt, names_filter=lambda name: name.startswith("blocks.3.attn."))
    scores = trace["blocks.3.attn.scores_unmasked"][8, -1]
    values = trace["blocks.3.attn.v"][result.kv_head]
    hard = soft_lookup.blend(scores, values, 1e4)
    assert int(hard.weights.argmax()) == result.top_index
    assert torch.allclose(hard.output, values[result.top_index].double(), atol=1e-6)
    own = soft_lookup.blend(scores, values, 1.0)
    assert np.abs(own.weights.numpy() - result.model_weights).max() <= numerics.softmax_noise(len(result.tokens))


def test_a_dict_needs_the_exact_key(runtime: Runtime, result):
    tokens = runtime.trace(DEMO.default_prompt, names_filter=lambda name: False).tokens
    store, hit, value, miss, error = soft_lookup.dict_lookup(tokens, result.top_token)
    assert store[hit] == value == result.dict_hit_value
    with pytest.raises(KeyError):
        store[miss]
    assert result.dict_miss_error.startswith("KeyError") and result.dict_miss_key == miss


def test_one_query_per_token_per_head_and_keys_per_kv_head(runtime: Runtime):
    # content/claims/llms-do-not-use-database-style-kqv.yaml: for "The cat sat" the layer-0 projections
    # give [3, 576], [3, 192] and [3, 192]: one row per prompt token (576 = 9 heads x 64, 192 = 3 heads x 64).
    config = runtime.smollm2.model.config
    run = DEMO.run(runtime, "The cat sat", layer=0, head=0)
    assert run.q_shape == (config.num_attention_heads, 3, config.head_dim)
    assert run.k_shape == run.v_shape == (config.num_key_value_heads, 3, config.head_dim)
    per_token = lambda shape: (shape[1], shape[0] * shape[2])  # noqa: E731
    assert (per_token(run.q_shape), per_token(run.k_shape), per_token(run.v_shape)) == ((3, 576), (3, 192), (3, 192))


def test_explanation_and_chart(runtime: Runtime, result):
    text = DEMO.explain(result)
    assert f"{result.entropy_bits:.2f} bits" in text and f"{result.tokens_for_90} tokens hold 90%" in text
    assert "KeyError" in text and 60 <= len(text.split()) <= 150
    sharper = DEMO.run(runtime, sharpness=4)
    assert sharper.sharp_max_weight > result.sharp_max_weight
    assert "At your β = 4" in DEMO.explain(sharper) and len(DEMO.explain(sharper).split()) <= 150
    spec = DEMO.chart(sharper).to_dict()
    assert len(spec["vconcat"]) == 2
    assert _bar_series(spec) == ["β = 1 (the model)", "β = 4"]
    assert [panel["layer"][0]["title"]["subtitle"] for panel in spec["vconcat"][0]["hconcat"]] == [
        "dashed: the model (β = 1); ringed: β = 4"] * 2


def _bar_series(spec: dict) -> list[str]:
    bars = spec["vconcat"][1]
    return list(dict.fromkeys(row["softmax of"] for row in spec["datasets"][bars["data"]["name"]]))


def test_at_the_models_own_beta_the_chart_shows_one_series(result):
    assert result.sharpness == 1
    spec = DEMO.chart(result).to_dict()
    assert _bar_series(spec) == ["β = 1 (the model)"]  # not a second, identical "β = 1"
    rows = spec["datasets"][spec["vconcat"][1]["data"]["name"]]
    np.testing.assert_allclose([row["weight"] for row in rows], result.model_weights)
    for panel in spec["vconcat"][0]["hconcat"]:
        line = panel["layer"][0]
        assert line["title"]["subtitle"] == "dashed and ringed: β = 1, the model's own"
        # End labels (0.0, 1.0, 0.25, 64) sit on their gridlines, not nudged inward.
        assert line["encoding"]["x"]["axis"]["labelFlush"] is False
        assert line["encoding"]["y"]["axis"]["labelFlush"] is False


@pytest.mark.parametrize(
    "params,message",
    [({"sharpness": 0}, "out of range"), ({"sharpness": 100}, "out of range"), ({"layer": 30}, "out of range"),
     ({"head": 9}, "out of range")],
)
def test_bad_input_is_a_clear_error(runtime: Runtime, params, message):
    with pytest.raises(UserInputError, match=message):
        DEMO.run(runtime, **params)


def test_a_one_token_prompt_is_a_clear_error(runtime: Runtime):
    with pytest.raises(UserInputError, match="at least two tokens"):
        DEMO.run(runtime, "Hello")
