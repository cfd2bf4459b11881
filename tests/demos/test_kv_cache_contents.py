"""The KV cache holds past keys and values (2 × layers × KV heads × d_head numbers per token), no queries,
and equals a recomputation without the cache (keys, values and next-token predictions) up to float32 rounding."""

from __future__ import annotations

import dataclasses
import re

import altair as alt
import numpy as np
import pytest
import torch
import vl_convert

from kqv_demo import numerics
from kqv_demo.content.loader import load_bank
from kqv_demo.demos import kv_cache_contents
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime, cache_tensors

DEMO = kv_cache_contents.DEMO


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


@pytest.fixture(scope="module")
def per_token_in_the_bank() -> int:
    """The numbers one token adds to SmolLM2's cache, as the bank's quiz item asks for them."""
    claim = load_bank(dialogue=False).claims["kv-cache-also-stores-queries"]
    return int(claim.quiz.numeric.answer)


def test_the_cache_per_token_comes_from_the_models_shape(config, result, per_token_in_the_bank):
    # Planted bug: counting only the cached keys (not the values) failed this test.
    per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim
    assert result.numbers_per_token == per_token == per_token_in_the_bank, "the figure the bank quotes"
    assert result.bytes_per_number == 4, "float32"
    assert result.bytes_per_token == 4 * per_token
    assert result.context_length == config.max_position_embeddings


def test_the_cache_object_holds_exactly_the_keys_and_values_of_the_cached_tokens(config, result, per_token_in_the_bank):
    # Counted from every tensor the DynamicCache object holds (runtime.cache_tensors), at every step.
    # Planted bugs: cache_tensors skipping each layer's values failed this test (half the numbers); a query
    # tensor [1, 9, T, 64] kept on each cache layer by Runtime.generate failed it too (an extra, query-shaped tensor).
    for held, length in zip(result.numbers_held, result.cache_lengths):
        assert held == length * per_token_in_the_bank, "exactly the keys and values of the cached tokens, nothing more"
    tokens = result.cache_lengths[-1]
    assert set(result.cache_held) == {f"layers.{layer}.{name}" for layer in range(config.num_hidden_layers)
                                      for name in ("keys", "values")}
    kv_shape = (1, config.num_key_value_heads, tokens, config.head_dim)
    assert set(result.cache_held.values()) == {kv_shape}
    assert not any(shape[1] == config.num_attention_heads for shape in result.cache_held.values()), "no query heads"
    assert sum(int(np.prod(shape)) for shape in result.cache_held.values()) == tokens * per_token_in_the_bank
    assert result.holds_only_keys_and_values and result.sizes_match


def test_a_query_kept_in_the_cache_would_be_found(runtime: Runtime, config):
    # The check can fail: cache_tensors walks the cache object itself, so a tensor kept there by mistake shows.
    from transformers import DynamicCache

    cache = DynamicCache(config=config)
    keys = torch.zeros(1, config.num_key_value_heads, 2, config.head_dim)
    cache.update(keys, keys.clone(), 0)
    cache.layers[0].queries = torch.zeros(1, config.num_attention_heads, 2, config.head_dim)
    assert set(cache_tensors(cache)) == {"layers.0.keys", "layers.0.values", "layers.0.queries"}


def test_each_step_received_kv_heads_by_tokens_by_d_head(runtime: Runtime, config, result):
    prompt_tokens = len(runtime.tokenize(DEMO.default_prompt)[0])
    steps = DEMO.params[0].default
    assert len(result.generated) == steps
    assert result.cache_lengths == list(range(prompt_tokens, prompt_tokens + steps))
    assert result.key_shapes == [(config.num_key_value_heads, n, config.head_dim) for n in result.cache_lengths]


def test_no_query_is_kept(config, result):
    # Planted bug: counting the query rows from the recorded keys failed this test.
    assert result.query_rows == [len(result.prompt_tokens)] + [1] * (len(result.generated) - 1)
    assert result.only_new_queries
    assert result.query_numbers_per_token == config.num_hidden_layers * config.num_attention_heads * config.head_dim


def test_cached_keys_and_values_equal_a_recomputation_within_float32(result):
    # Planted bug: comparing with the recomputation one position later (full[:, 1:same + 1]) failed this test.
    assert result.compared_positions == result.cache_lengths[-1], "the recomputation read the same tokens"
    assert result.generated_compared == len(result.generated) - 1
    assert result.bound == numerics.KEY_VALUE_NOISE
    assert (result.key_diff <= result.bound).all() and (result.value_diff <= result.bound).all()
    assert result.matches_recomputation and kv_cache_contents.status(result)[0]


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_a_half_precision_cache_fails_the_check_in_every_layer(runtime: Runtime, config, half):
    # The bound is tight enough to tell float32 kernels apart from a cache rounded to 16 bits: fp16 rounds
    # each entry by up to 2**-11 of itself, at least 2**-12 of the largest entry, > KEY_VALUE_NOISE (1e-4).
    # Planted bug: KEY_VALUE_NOISE = 1e-3 failed this test for fp16 (bf16, which rounds 8 times more, still
    # failed the check).
    ids, _, steps = runtime.generate(DEMO.default_prompt, 4, keep_cache=True)
    cached_ids = ids + [step.token_id for step in steps[:-1]]
    full = runtime.trace(runtime.smollm2.tokenizer.decode(cached_ids), max_tokens=len(cached_ids),
                         names_filter=lambda name: name.endswith((".attn.rot_k", ".attn.v")))
    assert full.token_ids == cached_ids
    exact = kv_cache_contents.differences(steps[-1].cache, full, len(cached_ids))
    assert max(float(d.max()) for d in exact) <= numerics.KEY_VALUE_NOISE, "float32 as it is passes"
    rounded = {name: tensor.to(half).float() for name, tensor in steps[-1].cache.items()}
    key_diff, value_diff = kv_cache_contents.differences(rounded, full, len(cached_ids))
    failing = np.maximum(key_diff, value_diff) > numerics.KEY_VALUE_NOISE
    assert failing.all(), f"layers where a {half} cache passes: {np.flatnonzero(~failing).tolist()}"


def test_a_key_from_the_wrong_position_would_break_the_bound(runtime: Runtime, result):
    # The check can fail: neighbouring positions' keys differ by far more than the bound allows.
    _, _, steps = runtime.generate(DEMO.default_prompt, 2, keep_cache=True)
    keys = steps[-1].cache["layers.5.keys"][0]
    shifted = kv_cache_contents.relative_diff(keys[:, 1:], keys[:, :-1])
    assert shifted > 100 * result.bound


def test_every_steps_prediction_equals_a_recomputation_within_the_logit_bound(result):
    # Planted bug: comparing step i's logits with the recomputation's at position len(ids) − 2 + i (one too
    # early) failed this test.
    assert len(result.logit_diff) == len(result.probability_diff) == len(result.generated), "every step compared"
    assert result.logit_bound == numerics.LOGIT_NOISE
    assert (result.logit_diff <= result.logit_bound).all()
    assert (result.probability_diff <= numerics.probability_noise(0.5)).all(), "the probabilities move less still"
    assert result.same_predictions and kv_cache_contents.status(result)[0]


def test_another_tokens_prediction_would_break_the_logit_bound(runtime: Runtime):
    # The check can fail: the next-token logits of neighbouring steps differ far beyond LOGIT_NOISE.
    _, _, steps = runtime.generate(DEMO.default_prompt, 3)
    assert float((steps[1].logits - steps[2].logits).abs().max()) > 100 * numerics.LOGIT_NOISE


def test_one_step_caches_the_prompt_only(runtime: Runtime):
    run = DEMO.run(runtime, steps=1)
    assert run.cache_lengths == [len(run.prompt_tokens)] and run.query_rows == [len(run.prompt_tokens)]
    assert run.generated_compared == 0 and run.matches_recomputation and len(run.logit_diff) == 1
    assert "queries in the one step" in kv_cache_contents.explain(run)


@pytest.mark.parametrize("params,message",
                         [({"steps": 0}, "Tokens to generate"), ({"steps": 21}, "Tokens to generate")])
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
        numbers_held=[n * result.numbers_per_token for n in lengths], logit_diff=np.resize(result.logit_diff, steps),
        probability_diff=np.resize(result.probability_diff, steps),
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


def test_explanation_headline_and_details_use_this_run(result, per_token_in_the_bank):
    text = kv_cache_contents.explain(result)
    per_token, per_token_bytes = f"{per_token_in_the_bank:,}", f"{4 * per_token_in_the_bank:,}"
    assert f"2 × 30 × 3 × 64 = **{per_token} numbers = {per_token_bytes} bytes**" in text
    assert "**No query is kept**" in text and f"{result.compared_positions} positions" in text
    assert f"at most {float(result.logit_diff.max()):.0e} (bound {numerics.LOGIT_NOISE:.0e})" in text
    assert f"under the bound of {numerics.KEY_VALUE_NOISE:.0e}" in text
    assert 80 <= len(text.split()) <= 160
    headline = dict(kv_cache_contents.headline(result))
    assert (headline["Cache per token"] == f"{per_token} floats = {per_token_bytes} bytes"
            and headline["Queries kept"] == "0")
    assert headline[f"Cache after step {len(result.generated)}"] == (
        f"{result.cache_lengths[-1] * 4 * per_token_in_the_bank / 1024:,.1f} KB")
    assert headline["Next-token probabilities, max change"] == f"{float(result.probability_diff.max()):.0e}"
    details = kv_cache_contents.details(result)
    assert f"[1, 3, {result.cache_lengths[-1]}, 64]: the cache of layer 0" in details and "[9, 1, 64]" in details
