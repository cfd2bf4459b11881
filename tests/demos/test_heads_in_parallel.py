"""Heads run side by side in one call; their order does not matter; grouped-query heads share K/V."""

from __future__ import annotations

import numpy as np
import pytest

from kqv_demo import numerics
from kqv_demo.demos import heads_in_parallel
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime

DEMO = heads_in_parallel.DEMO


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


@pytest.mark.parametrize("layer", [0, 5, 12, 24, 29])
def test_one_call_computes_every_head_and_w_o_rebuilds_the_result(runtime: Runtime, config, layer):
    result = DEMO.run(runtime, layer=layer)
    tokens = len(runtime.tokenize(DEMO.default_prompt)[0])
    assert result.attention_calls == 1
    assert result.layers_called_once
    assert result.out_shape == (tokens, config.num_attention_heads, config.head_dim)
    assert result.o_proj_shape == (config.hidden_size, config.num_attention_heads * config.head_dim)
    # Reordering the heads changes only float32 rounding: within the bound derived from this run's
    # magnitudes (kqv_demo.numerics; holds on every CPU), and in float64 every order agrees to machine precision.
    assert result.reconstruction_max_diff <= result.rounding_tolerance
    assert result.order_invariance <= result.rounding_tolerance
    assert result.rounding_tolerance < 1e-2 * max(1.0, result.result_max_abs)  # a wrong W_O block misses by far more
    assert result.order_max_diff_float64 <= 1e-10
    assert result.separate_heads_max_diff <= result.separate_heads_tolerance
    assert heads_in_parallel.status(result)[0]


def test_the_head_order_figure_quoted_in_the_claim(result):
    # content/claims/heads-chain-query-to-next-head.yaml: each head computed alone, in shuffled order, matches
    # the model's single call "to within 0.001" in layer 0. The difference itself (0 or a few 1e-8) depends on
    # the CPU's kernels, so the claim quotes the bound float32 rounding stays under on every CPU.
    assert result.layer == 0
    assert sorted(result.orders[2]) == list(range(result.n_heads)) and result.orders[2] != result.orders[0]
    assert result.separate_heads_max_diff <= result.separate_heads_tolerance <= 1e-3


def test_the_orders_are_real_permutations(result):
    n = result.n_heads
    assert result.orders[0] == list(range(n))
    for order in result.orders[1:]:
        assert sorted(order) == list(range(n)) and order != result.orders[0]
    assert len(result.order_max_diffs) == len(result.orders)


def test_a_mismatched_permutation_would_be_caught(runtime: Runtime, result):
    # The check can fail: shuffling heads without shuffling W_O's column blocks changes the result.
    trace = runtime.trace(DEMO.default_prompt, names_filter=lambda n: n.startswith("blocks.0.attn"))
    heads = trace["blocks.0.attn.z"]
    w_o = runtime.parameter("model.layers.0.self_attn.o_proj.weight")
    wrong = heads[:, result.orders[1]].reshape(heads.shape[0], -1) @ w_o.T
    assert float((wrong - trace["blocks.0.attn_out"]).abs().max()) > 1e-2


def test_grouped_query_attention_sharing(config, result):
    group = config.num_attention_heads // config.num_key_value_heads
    assert result.kv_head_of == [h // group for h in range(config.num_attention_heads)]
    assert len(set(result.kv_head_of)) == config.num_key_value_heads
    assert len(result.sharing_pairs) == config.num_key_value_heads * group * (group - 1) // 2
    assert all(result.kv_head_of[a] == result.kv_head_of[b] for a, b in result.sharing_pairs)
    # Heads that read the same keys and values still attend differently: their queries differ.
    assert min(result.sharing_pattern_diffs) > 0.1


def test_patterns_are_causal_and_normalised(result):
    assert result.patterns.shape == (result.n_heads, len(result.tokens), len(result.tokens))
    assert (np.abs(result.patterns.sum(-1) - 1) <= numerics.sums_to_one_noise(len(result.tokens))).all()
    assert (np.triu(result.patterns, k=1) == 0).all()  # exact on any CPU: masked scores underflow exp to 0


def test_explanation_headline_and_chart_use_this_run(result):
    text = heads_in_parallel.explain(result)
    assert "**1 time**" in text and "0, 1, 2 / 3, 4, 5 / 6, 7, 8" in text
    assert f"{result.order_invariance:.1e}" in text
    assert 60 <= len(text.split()) <= 150
    spec = heads_in_parallel.chart(result).to_dict()
    assert spec["columns"] == result.n_kv_heads
    assert spec["spec"]["encoding"]["x"]["sort"] == result.tokens
    assert spec["spec"]["encoding"]["color"]["scale"]["scheme"] == "viridis"


@pytest.mark.parametrize("prompt", [None, "The keys and values of earlier tokens are stored in a cache so"])
def test_every_panel_labels_every_token_within_the_column(runtime: Runtime, prompt):
    result = DEMO.run(runtime, prompt or DEMO.default_prompt)
    spec = heads_in_parallel.chart(result).to_dict()
    encoding, panel = spec["spec"]["encoding"], spec["spec"]["width"]
    assert encoding["x"]["axis"]["labelOverlap"] is False and encoding["y"]["axis"]["labelOverlap"] is False
    assert panel == spec["spec"]["height"] >= 14 * len(result.tokens), "room for each token's label"
    assert result.n_kv_heads * panel <= 570, "three panels with their axes and legend fit in ~800 px"


@pytest.mark.parametrize("layer,message", [(30, "Layer 30"), (-1, "Layer -1"), ("two", "number")])
def test_bad_layer_is_a_clear_error(runtime: Runtime, layer, message):
    with pytest.raises(UserInputError, match=message):
        DEMO.run(runtime, layer=layer)


def test_compute_checks_the_layer_too(runtime: Runtime):
    with pytest.raises(UserInputError, match="Layer 31"):
        heads_in_parallel.compute(runtime, "The cat sat", layer=31)


def test_long_prompts_chart_only_the_first_positions(runtime: Runtime):
    prompt = " ".join(["the cat sat on the mat"] * 8)
    result = DEMO.run(runtime, prompt, layer=1)
    assert len(result.tokens) > heads_in_parallel.CHART_TOKENS
    spec = heads_in_parallel.chart(result).to_dict()  # raises if over Altair's row limit
    shown = result.tokens[: heads_in_parallel.CHART_TOKENS]
    assert spec["spec"]["encoding"]["x"]["sort"] == shown
    assert f"first {len(shown)} of {len(result.tokens)} tokens" in spec["title"]
    # 32 labels per axis cannot fit in a third of the column: Vega thins them instead.
    assert spec["spec"]["width"] <= 190 and spec["spec"]["encoding"]["x"]["axis"]["labelOverlap"] == "greedy"


def test_the_chart_holds_every_visible_cell_of_every_head(result):
    spec = heads_in_parallel.chart(result).to_dict()
    rows = next(iter(spec["datasets"].values()))
    t = len(result.tokens)
    assert len(rows) == result.n_heads * t * (t + 1) // 2
    cell = next(r for r in rows if r["head"].startswith("head 7 ") and r["query token"] == result.tokens[5]
                and r["key token"] == result.tokens[2])
    assert cell["weight"] == pytest.approx(float(result.patterns[7, 5, 2]))


def test_details_show_this_runs_numbers(result):
    text = heads_in_parallel.details(result)
    assert f"single call to {result.separate_heads_max_diff:.1e}" in text
    assert "{result" not in text and "{layer" not in text
    assert f"trace.calls['blocks.{result.layer}.attn.pattern']   # 1" in text


def test_a_one_token_prompt_is_explained_not_flagged(runtime: Runtime):
    result = DEMO.run(runtime, "Hello")
    assert len(result.tokens) == 1 and max(result.sharing_pattern_diffs) == 0
    assert heads_in_parallel.status(result)[0]
    assert "one-token prompt" in heads_in_parallel.explain(result)
