"""Context changes predictions: a prefix changes P(target) with the same weights, through the keys and
values its tokens add, which the last prompt token attends to."""

from __future__ import annotations

import re

import altair as alt
import numpy as np
import pytest
import torch
import vl_convert

from kqv_demo import numerics
from kqv_demo.demos import context_effect
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime
from tests.quoted import assert_quoted

DEMO = context_effect.DEMO
CLAIM_PREFIX = "The capital of Italy is Rome. The capital of Spain is Madrid."


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


def test_the_quoted_rise_from_077_to_097(runtime: Runtime, result):
    # content/claims/pre-queries-guide-model-to-right-keys.yaml: P(" Paris" | "The capital of France is") = 0.77;
    # with the two-example prefix "The capital of Italy is Rome. The capital of Spain is Madrid." it rises to 0.97.
    assert_quoted(result.p_plain, "0.77", numerics.probability_noise(result.p_plain), 'P(" Paris")')
    assert_quoted(result.p_prefix, "0.97", numerics.probability_noise(result.p_prefix), 'P(" Paris") after the prefix')
    as_quoted = DEMO.run(runtime, prefix=CLAIM_PREFIX)  # without the trailing space: one is added
    assert as_quoted.p_prefix == pytest.approx(result.p_prefix, abs=1e-6)


def test_probabilities_are_the_models_own(runtime: Runtime, result):
    paris = runtime.tokenize(" Paris")[0]
    assert result.target_tokens == [" Paris"] and len(paris) == 1
    for context, value in ((DEMO.default_prompt, result.p_plain),
                           (result.prefix + DEMO.default_prompt, result.p_prefix)):
        logits = runtime.trace(context, names_filter=lambda name: False).logits[-1]
        # the demo reads all its contexts in one packed pass, we each in its own: other kernels
        assert abs(value - float(torch.softmax(logits, -1)[paris[0]])) <= numerics.probability_noise(value)


def test_an_irrelevant_prefix_does_not_help_here(result):
    # lower on every CPU: by more than the rounding of both probabilities
    noise = numerics.probability_noise
    assert result.p_distractor + noise(result.p_distractor) < result.p_prefix - noise(result.p_prefix)
    # it hurts (Shi et al. 2023)
    assert result.p_distractor + noise(result.p_distractor) < result.p_plain - noise(result.p_plain)


def test_each_prefix_token_adds_one_key_and_value_per_kv_head_per_layer(runtime: Runtime, result):
    config = runtime.smollm2.model.config
    plain = len(runtime.tokenize(DEMO.default_prompt)[0])
    joined = len(runtime.tokenize(result.prefix + DEMO.default_prompt)[0])
    assert result.helpful.prefix_tokens == joined - plain > 1
    assert result.helpful.prompt_tokens == plain
    assert result.n_kv_heads == config.num_key_value_heads and result.n_layers == config.num_hidden_layers
    assert result.plain_keys_per_layer == plain * config.num_key_value_heads
    assert result.added_keys_per_layer == result.helpful.prefix_tokens * config.num_key_value_heads
    assert result.added_values_per_layer == result.added_keys_per_layer


def test_attention_split_leaves_token_0_out_of_both_sides(runtime: Runtime, result):
    split = result.helpful
    # sink + prefix + prompt = the whole row (mean over heads of rows that each sum to 1 up to rounding)
    assert (np.abs(split.by_layer.sum(axis=1) - 1)
            <= numerics.sums_to_one_noise(split.prefix_tokens + split.prompt_tokens)).all()
    trace = runtime.trace(result.prefix + DEMO.default_prompt, names_filter=lambda name: name.endswith("attn.pattern"))
    n_prefix = split.prefix_tokens
    rows = torch.stack([trace[f"blocks.{layer}.attn.pattern"][:, -1] for layer in range(trace.model.n_layers)])
    to_prefix = float(rows[..., 1:n_prefix].sum(-1).mean())
    to_prompt = float(rows[..., n_prefix:].sum(-1).mean())
    # The demo's weights come from its packed pass, these from a pass of their own: attention scores, like
    # logits, move by at most LOGIT_NOISE between passes, so a weight (or a mean of weights) by weight_noise.
    to_sink, keys = float(rows[..., 0].mean()), rows.shape[-1]
    assert abs(split.mean[0] - to_sink) <= numerics.weight_noise(to_sink, keys)
    assert abs(split.mean[1] - to_prefix) <= numerics.weight_noise(to_prefix, keys)
    share = to_prefix / (to_prefix + to_prompt)
    assert abs(split.prefix_share - share) <= 2 * numerics.weight_noise(share, keys)
    assert 0 < split.prefix_share < 1
    assert split.mean[0] > 0.3, "token 0 is a large attention sink: the reason to leave it out"
    assert f"{split.prefix_share:.0%} goes to the prefix" in DEMO.explain(result)


def test_nothing_is_learned(runtime: Runtime, result):
    before = runtime.parameter_digest()
    again = DEMO.run(runtime)
    assert runtime.parameter_digest() == before
    # the prefix left no trace: same context, same probability, exactly (the same passes on the same CPU)
    assert again.p_plain == result.p_plain


def test_explanation_and_chart(result):
    text = DEMO.explain(result)
    assert f"{result.p_plain:.2f}" in text and f"{result.p_prefix:.2f}" in text and f"{result.p_distractor:.2f}" in text
    assert "Shi et al. 2023" in text and 60 <= len(text.split()) <= 150
    spec = DEMO.chart(result).to_dict()
    assert len(spec["vconcat"]) == 2


def test_the_chart_fits_the_app_column_with_every_legend_label_whole(result):
    chart = DEMO.chart(result).properties(autosize=alt.AutoSizeParams(type="pad"))  # as the app draws it
    svg = vl_convert.vegalite_to_svg(chart.to_json())
    assert float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1)) <= 800
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert all(part in texts for part in context_effect.PARTS)


@pytest.mark.parametrize(
    "params,message",
    [
        ({"target": "  "}, "target is empty"),
        ({"prefix": "Hi"}, "too short"),
        ({"distractor": "The capital of Italy is Rome. The capital of Spain is Madrid. "}, "same text"),
        ({"prefix": "word " * 300}, "Shorten them"),
    ],
)
def test_bad_input_is_a_clear_error(runtime: Runtime, params, message):
    with pytest.raises(UserInputError, match=message):
        DEMO.run(runtime, **params)


def test_a_prompt_too_long_to_read_whole_is_a_clear_error(runtime: Runtime):
    with pytest.raises(UserInputError, match="The prompt has .* tokens"):
        DEMO.run(runtime, "word " * 300)
