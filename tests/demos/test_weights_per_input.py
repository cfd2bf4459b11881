"""Attention weights are computed for each input: the same words get different weights; W_Q and W_K stay the same."""

from __future__ import annotations

import dataclasses
import re

import altair as alt
import numpy as np
import pytest
import torch
import vl_convert

from kqv_demo import numerics
from kqv_demo.demos import weights_per_input
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime, hashes_digest

DEMO = weights_per_input.DEMO


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


def test_the_same_pair_of_words_gets_different_weights(result):
    # Planted bug: tracing the first sentence twice (trace_batch([prompt, prompt])) made the largest
    # difference 0.0 and this test failed.
    assert not result.identical_inputs
    assert result.max_difference > 0.1, "far above float32 noise (5e-4): a different weight, not rounding"
    assert result.weights_differ and weights_per_input.status(result)[0]


def test_the_pairs_are_the_shared_words_at_their_own_positions(runtime: Runtime, result):
    # Each sentence traced on its own: the demo's weights must be those of each word's own position.
    # Planted bug: reading sentence B's weight at row once_b[query] - 1 failed this test.
    separate = [runtime.trace(text, names_filter=lambda n: n == "blocks.3.attn.pattern")
                for text in (result.sentence_a, result.sentence_b)]
    assert result.shared_tokens == ["The", " on", " the", " mat", " because", " it", " was", "."]
    assert len(result.pairs) == 8 * 9 // 2, "every shared key at or before its shared query, in both"
    for pair in result.pairs:
        for trace, weight in zip(separate, (pair.weight_a, pair.weight_b)):
            query, key = trace.tokens.index(pair.query), trace.tokens.index(pair.key)
            assert key <= query
            alone = float(trace["blocks.3.attn.pattern"][4, query, key])
            assert weight == pytest.approx(alone, abs=numerics.weight_noise(max(weight, alone), trace.n_tokens))


def test_each_row_of_weights_sums_to_one(result):
    # Planted bug: recording `attn.scores_unmasked` instead of `attn.pattern` failed this test (rows sum to anything).
    assert result.row_sum_error <= result.row_sum_bound
    for weights in (result.weights_a, result.weights_b):
        assert (weights >= 0).all() and (np.triu(weights, k=1) == 0).all(), "causal: the future gets exactly 0"
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=result.row_sum_bound)


def test_the_learned_matrices_are_one_tensor_each_and_unchanged(runtime: Runtime, config, result):
    # The digest is the model's own weight hashes (runtime.weight_hashes, read here independently of the demo),
    # and a copy of W_Q with one bit changed has another one: equal digests before and after the pass mean
    # unchanged matrices. Planted bug: the "after" digest taken from layer + 1 failed this test.
    names = [f"model.layers.3.self_attn.{projection}.weight" for projection in ("q_proj", "k_proj")]
    hashes = runtime.parameter_hashes()
    assert result.digest_before == result.digest_after == hashes_digest({name: hashes[name] for name in names})
    assert result.learned_unchanged
    perturbed = {name: runtime.parameter(name).clone() for name in names}
    perturbed[names[0]].view(torch.int32)[0, 0] ^= 1  # the lowest bit of one weight
    assert weights_per_input.learned_digest(perturbed) != result.digest_after
    assert result.w_q_shape == (config.num_attention_heads * config.head_dim, config.hidden_size)
    assert result.w_k_shape == (config.num_key_value_heads * config.head_dim, config.hidden_size)
    # The weights' shape follows the input; the learned matrices' shape does not.
    assert result.weights_a.shape == (len(result.tokens_a),) * 2 != result.weights_b.shape


def test_the_same_sentence_twice_gives_the_same_weights(runtime: Runtime):
    same = DEMO.run(runtime, other=DEMO.default_prompt)
    assert same.identical_inputs
    assert all(pair.difference <= numerics.weight_noise(max(pair.weight_a, pair.weight_b), len(same.tokens_a))
               for pair in same.pairs)
    passed, text = weights_per_input.status(same)
    assert passed and "same input" in text.lower()
    assert "change a word" in weights_per_input.explain(same)


def test_a_decoder_keeps_the_weights_of_a_shared_beginning(runtime: Runtime):
    # Only the last word differs: every shared word comes before it, and in a decoder a word's weights
    # depend only on the words up to it, so they do not change (beyond rounding).
    late = DEMO.run(runtime, "The cat sat on the mat", other="The cat sat on the rug")
    assert late.shared_tokens == ["The", " cat", " sat", " on", " the"]
    assert all(pair.difference <= numerics.weight_noise(max(pair.weight_a, pair.weight_b), len(late.tokens_a))
               for pair in late.pairs)
    assert not late.weights_differ
    assert weights_per_input.status(late)[0]
    assert "depend only on the words up to it" in weights_per_input.explain(late)


@pytest.mark.parametrize("params,message", [
    ({"other": "Dogs bark loudly!"}, "share no word"),
    ({"layer": 30}, "Layer 30"),
    ({"head": 9}, "Head 9"),
])
def test_bad_inputs_are_clear_errors(runtime: Runtime, params, message):
    with pytest.raises(UserInputError, match=message):
        DEMO.run(runtime, "Cats purr.", **params) if "other" in params else DEMO.run(runtime, **params)


def test_compute_checks_the_layer_too(runtime: Runtime):
    with pytest.raises(UserInputError, match="Layer 31"):
        weights_per_input.compute(runtime, "The cat", other="The dog", layer=31, head=0)


def _rendered(chart: alt.TopLevelMixin) -> tuple[float, list[str]]:
    svg = vl_convert.vegalite_to_svg(chart.properties(autosize=alt.AutoSizeParams(type="pad")).to_json())
    return float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1)), re.findall(r"<text[^>]*>([^<]*)</text>", svg)


@pytest.mark.parametrize("prompt,other,side_by_side", [
    (None, None, True),
    ("Internationalization considerations notwithstanding, extraordinary circumstances necessitated",
     "Extraordinary circumstances notwithstanding, internationalization considerations necessitated", True),
    (" ".join(["the cat sat on the mat"] * 4), " ".join(["the dog sat on the mat"] * 4), False),
])
def test_both_maps_fit_the_page_with_every_label_whole(runtime: Runtime, prompt, other, side_by_side):
    run = DEMO.run(runtime, prompt, **({"other": other} if other else {}))
    chart = DEMO.chart(run)
    assert ("hconcat" in chart.to_dict()) == side_by_side
    width, texts = _rendered(chart)
    assert width <= 800
    assert not any("…" in text for text in texts)
    for label in run.tokens_a:
        assert texts.count(label) >= 2, f"{label!r} on both axes of the first map"


def test_explanation_headline_and_details_use_this_run(result):
    text = weights_per_input.explain(result)
    assert f"**{result.max_difference:.2f}**" in text and f"{len(result.pairs)} pairs" in text
    assert f"{result.largest.weight_a:.2f}" in text and f"{result.largest.weight_b:.2f}" in text
    assert "576×576" in text and "192×576" in text and "11×11" in text and "12×12" in text
    assert 80 <= len(text.split()) <= 160
    headline = dict(weights_per_input.headline(result))
    assert headline["Max |weight A − weight B|, shared words"] == f"{result.max_difference:.2f}"
    assert headline["W_Q, W_K changed by the pass"] == "no"
    details = weights_per_input.details(result)
    assert "blocks.3.attn.pattern'][4]" in details and result.digest_before[:16] in details


def test_a_changed_matrix_fails_the_status(result):
    changed = dataclasses.replace(result, digest_after="0" * 64)
    assert not weights_per_input.status(changed)[0]
    assert weights_per_input.headline(changed)[-1] == ("W_Q, W_K changed by the pass", "yes")
