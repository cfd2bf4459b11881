"""The KV cache: one new key and value per step; the new query scores every cached key; text comes from
the vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from kqv_demo import numerics
from kqv_demo.demos import kv_cache
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime
from tests.quoted import assert_quoted

DEMO = kv_cache.DEMO


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


def test_each_step_adds_exactly_one_key_and_one_value(runtime: Runtime, result):
    config = runtime.smollm2.model.config
    prompt_ids, _ = runtime.tokenize(DEMO.default_prompt)
    assert len(result.generated) == DEMO.params[0].default
    assert result.key_lengths[0] == len(prompt_ids), "step 1 caches the whole prompt"
    assert (np.diff(result.key_lengths) == 1).all()
    assert (np.diff(result.value_lengths) == 1).all()
    np.testing.assert_array_equal(result.key_lengths, result.cache_lengths)
    np.testing.assert_array_equal(result.value_lengths, result.cache_lengths)
    assert (result.key_heads == config.num_key_value_heads).all(), "one key per key/value head, not per query head"


def test_cached_keys_are_reused_unchanged(result):
    assert result.cached_keys_max_change == 0.0  # exact on any CPU: the cache keeps copies, nothing recomputes them


def test_one_new_query_scores_all_cached_keys(result):
    assert result.query_rows[0] == result.n_prompt and (result.query_rows[1:] == 1).all()
    for step, length in enumerate(result.cache_lengths):
        row = result.weights[step]
        assert np.isfinite(row[:length]).all() and np.isnan(row[length:]).all()
        assert abs(row[:length].sum() - 1) <= numerics.sums_to_one_noise(length)  # float32 softmax rounding
        assert row[:length].min() > 0, "every cached position is in the past: nothing is masked"
    assert all(abs(total - 1) <= numerics.sums_to_one_noise(n)
               for total, n in zip(result.row_sums, result.cache_lengths))
    assert (result.row_min > 0).all()
    assert abs(result.weight_on_prompt[0] - 1) <= numerics.sums_to_one_noise(result.cache_lengths[0])
    assert (result.weight_on_prompt[1:] < 1).all()
    assert result.consistent


@pytest.mark.parametrize("layer,head", [(0, 0), (17, 4), (29, 8)])
def test_the_facts_hold_in_other_layers_and_heads(runtime: Runtime, layer: int, head: int):
    other = DEMO.run(runtime, steps=3, layer=layer, head=head)
    assert other.consistent
    assert other.kv_head == head // (runtime.smollm2.shape.n_heads // runtime.smollm2.shape.n_kv_heads)


def test_values_exist_for_the_prompt_before_any_output(runtime: Runtime, result):
    # content/claims/output-text-is-the-value.yaml: every token gets 3 value vectors of 64 numbers per layer.
    config = runtime.smollm2.model.config
    assert result.prompt_values_shape == (config.num_key_value_heads, result.n_prompt, config.head_dim)
    assert result.prompt_values_shape[0] == 3 and result.prompt_values_shape[2] == 64
    assert result.vocabulary_size == 49152 == config.vocab_size


def test_the_eiffel_tower_probability_quoted_in_the_bank(runtime: Runtime):
    # content/claims/response-sampled-from-primed-representations.yaml: P(" Paris" | ...) = 0.70.
    paris = DEMO.run(runtime, "The Eiffel Tower is located in the city of", steps=1)
    assert paris.generated == [" Paris"]
    p_paris = float(paris.probabilities[0])
    assert_quoted(p_paris, "0.70", numerics.probability_noise(p_paris), 'P(" Paris")')


def test_the_greedy_chat_answer_quoted_in_the_bank(runtime: Runtime):
    # content/claims/output-text-is-the-value.yaml and response-sampled-from-primed-representations.yaml.
    _, _, steps = runtime.generate(runtime.chat_prompt("What is the capital of France?"), 12)
    text = runtime.smollm2.tokenizer.decode([step.token_id for step in steps], skip_special_tokens=True)
    assert text.strip() == "The capital of France is Paris."
    assert all(b.cache_length - a.cache_length == 1 for a, b in zip(steps, steps[1:])), "one token per pass"


@pytest.mark.parametrize("params,message", [
    ({"steps": 0}, "Tokens to generate"), ({"steps": 21}, "Tokens to generate"),
    ({"layer": 30}, "Layer 30"), ({"head": 9}, "Head 9"),
])
def test_bad_parameters_are_clear_errors(runtime: Runtime, params, message):
    with pytest.raises(UserInputError, match=message):
        DEMO.run(runtime, **params)


def test_compute_refuses_a_bad_layer_directly(runtime: Runtime):
    with pytest.raises(UserInputError, match="Layer 40"):
        kv_cache.compute(runtime, "Hello", steps=1, layer=40, head=0)


def test_explanation_headline_and_chart_describe_this_run(result):
    text = kv_cache.explain(result)
    assert f"{result.n_prompt} prompt tokens" in text and "reused unchanged" in text
    assert 60 <= len(text.split()) <= 150
    assert kv_cache.status(result)[0]
    spec = kv_cache.chart(result).to_dict()
    assert spec["encoding"]["x"]["sort"] == result.key_labels
    assert len(spec["encoding"]["y"]["sort"]) == len(result.generated)
    cells = sum(int(n) for n in result.cache_lengths)
    data = spec["datasets"][spec["data"]["name"]]
    assert len(data) == cells, "positions beyond the cache are left empty"


def _fits_and_labels_every_key(result) -> None:
    spec = kv_cache.chart(result).to_dict()
    x, y = spec["encoding"]["x"]["axis"], spec["encoding"]["y"]["axis"]
    assert y["labelLimit"] == 0, "row labels (token chosen, keys cached) are never cut"
    assert x["labelOverlap"] is False, "Vega would otherwise drop every other key label"
    keys = len(result.key_labels)
    assert 17 * keys <= spec["width"], "wide enough for the -45° labels not to collide"
    row_label = max(len(row) for row in spec["encoding"]["y"]["sort"])
    assert spec["width"] + 6 * row_label <= 740, "with the row labels, within the ~800 px column"


def test_the_chart_labels_every_step_and_key_within_the_column(result):
    _fits_and_labels_every_key(result)


def test_a_32_token_prompt_still_labels_every_key(runtime: Runtime):
    prompt = ("The keys and values of earlier tokens are stored in a cache so that the model does not "
              "have to compute them again when it writes the next word of its answer")
    long = DEMO.run(runtime, prompt)
    assert long.n_prompt == 32
    _fits_and_labels_every_key(long)


def test_too_many_keys_to_label_thins_the_labels_instead_of_overflowing(runtime: Runtime):
    long = DEMO.run(runtime, " ".join(["the cat sat on the mat"] * 12), steps=2)
    spec = kv_cache.chart(long).to_dict()
    assert spec["width"] <= 740 and spec["encoding"]["x"]["axis"]["labelOverlap"] == "greedy"
