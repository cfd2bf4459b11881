"""The KV cache holds past keys and values (2 × layers × KV heads × d_head numbers per token), no queries,
and equals a recomputation without the cache up to float32 rounding."""

from __future__ import annotations

import dataclasses
import re

import altair as alt
import numpy as np
import pytest
import vl_convert

from kqv_demo.demos import kv_cache_contents
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime

DEMO = kv_cache_contents.DEMO
EPS = float(np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


def test_the_cache_per_token_comes_from_the_models_shape(config, result):
    # Planted bug: counting only the cached keys (not the values) failed this test.
    per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim
    assert result.numbers_per_token == per_token
    assert result.bytes_per_number == 4, "float32"
    assert result.bytes_per_token == 4 * per_token
    assert (result.numbers_per_token, result.bytes_per_token) == (11_520, 46_080), "the figures the bank quotes"
    for held, length in zip(result.numbers_held, result.cache_lengths):
        assert held == length * per_token, "exactly the keys and values of the cached tokens, nothing more"
    assert result.sizes_match
    assert result.context_length == config.max_position_embeddings


def test_each_layer_holds_kv_heads_by_tokens_by_d_head(runtime: Runtime, config, result):
    prompt_tokens = len(runtime.tokenize(DEMO.default_prompt)[0])
    steps = DEMO.params[0].default
    assert len(result.generated) == steps
    assert result.cache_lengths == list(range(prompt_tokens, prompt_tokens + steps))
    assert result.key_shapes == [(config.num_key_value_heads, n, config.head_dim) for n in result.cache_lengths]
    assert result.shapes_agree, "every layer, keys and values alike"


def test_no_query_is_kept(config, result):
    # Planted bug: counting the query rows from the recorded keys failed this test.
    assert result.query_rows == [len(result.prompt_tokens)] + [1] * (len(result.generated) - 1)
    assert result.only_new_queries
    assert result.query_numbers_per_token == config.num_hidden_layers * config.num_attention_heads * config.head_dim


def test_cached_keys_and_values_equal_a_recomputation_within_float32(result):
    # Planted bug: comparing with the recomputation one position later (full[:, 1:same + 1]) failed this test.
    assert result.compared_positions == result.cache_lengths[-1], "the recomputation read the same tokens"
    assert result.generated_compared == len(result.generated) - 1
    assert (result.key_diff <= result.bound).all() and (result.value_diff <= result.bound).all()
    assert result.matches_recomputation and kv_cache_contents.status(result)[0]


def test_a_key_from_the_wrong_position_would_break_the_bound(runtime: Runtime, result):
    # The check can fail: neighbouring positions' keys differ by far more than the bound allows.
    _, _, steps = runtime.generate(DEMO.default_prompt, 2, names_filter=lambda n: n == "blocks.5.attn.k")
    keys = steps[-1].activations["blocks.5.attn.k"]
    shifted = kv_cache_contents._relative_diff(keys[:, 1:], keys[:, :-1])
    assert shifted > 100 * result.bound[5]


def test_the_bound_is_float32_sized_and_grows_with_depth(config):
    bounds = [kv_cache_contents.recompute_bound(layer, config, 11) for layer in range(config.num_hidden_layers)]
    assert bounds[0] == (2 * config.hidden_size + 4) * EPS, "layer 0: one RMSNorm and one projection"
    assert all(a < b for a, b in zip(bounds, bounds[1:]))
    assert bounds[-1] < 0.05


def test_one_step_caches_the_prompt_only(runtime: Runtime):
    run = DEMO.run(runtime, steps=1)
    assert run.cache_lengths == [len(run.prompt_tokens)] and run.query_rows == [len(run.prompt_tokens)]
    assert run.generated_compared == 0 and run.matches_recomputation
    assert "queries in the one step" in kv_cache_contents.explain(run)


@pytest.mark.parametrize("params,message", [({"steps": 0}, "Tokens to generate"), ({"steps": 21}, "Tokens to generate")])
def test_bad_parameters_are_clear_errors(runtime: Runtime, params, message):
    with pytest.raises(UserInputError, match=message):
        DEMO.run(runtime, **params)


def _rendered(chart: alt.TopLevelMixin) -> tuple[float, list[str]]:
    svg = vl_convert.vegalite_to_svg(chart.properties(autosize=alt.AutoSizeParams(type="pad")).to_json())
    return float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1)), re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def _with_steps(result, steps: int):
    """The default run's numbers stretched to `steps` steps: for the chart's layout only."""
    start = result.cache_lengths[0]
    lengths = list(range(start, start + steps))
    return dataclasses.replace(
        result, generated=["·x"] * steps, cache_lengths=lengths, query_rows=[start] + [1] * (steps - 1),
        numbers_held=[n * result.numbers_per_token for n in lengths],
        key_shapes=[(result.n_kv_heads, n, result.d_head) for n in lengths],
    )


@pytest.mark.parametrize("steps", [None, 20])
def test_the_chart_fits_the_page_with_every_label_whole(result, steps):
    shown = result if steps is None else _with_steps(result, steps)
    width, texts = _rendered(DEMO.chart(shown))
    assert width <= 800
    assert not any("…" in text for text in texts)
    for index, length in enumerate(shown.cache_lengths):
        assert f"step {index + 1}: {length} tokens" in texts
    assert "queries held: none (0 bytes at every step)" in texts
    assert {"keys", "values", "float32 bound"} <= set(texts)


def test_the_chart_holds_this_runs_numbers(result):
    spec = DEMO.chart(result).to_dict()
    sizes, agreement = spec["hconcat"]
    rows = spec["datasets"][sizes["data"]["name"]]
    total = sum(row["KB"] for row in rows if row["step"] == f"step 1: {result.cache_lengths[0]} tokens")
    assert total * 1024 == pytest.approx(result.cache_lengths[0] * result.bytes_per_token)
    points = spec["datasets"][agreement["data"]["name"]]
    keys = [row["exact"] for row in points if row["what"] == "keys"]
    np.testing.assert_allclose(keys, result.key_diff)


def test_explanation_headline_and_details_use_this_run(result):
    text = kv_cache_contents.explain(result)
    assert "2 × 30 × 3 × 64 = **11,520 numbers = 46,080 bytes**" in text
    assert "**No query is kept**" in text and f"{result.compared_positions} positions" in text
    assert 80 <= len(text.split()) <= 160
    headline = dict(kv_cache_contents.headline(result))
    assert headline["Cache per token"] == "11,520 floats = 46,080 bytes" and headline["Queries kept"] == "0"
    assert headline[f"Cache after step {len(result.generated)}"] == f"{result.cache_lengths[-1] * 46_080 / 1024:,.1f} KB"
    details = kv_cache_contents.details(result)
    assert f"[3, {result.cache_lengths[-1]}, 64]: the cache of layer 0" in details and "[9, 1, 64]" in details
