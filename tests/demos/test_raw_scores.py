"""Raw scores are unbounded and often negative; softmax makes them weights; a constant shift of a row
changes nothing."""

from __future__ import annotations

import dataclasses
import math
import re

import altair as alt
import numpy as np
import pytest
import torch
import vl_convert

from kqv_demo import numerics
from kqv_demo.demos import raw_scores
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime

DEMO = raw_scores.DEMO


@pytest.fixture(scope="module")
def trace(runtime: Runtime):
    return runtime.trace(DEMO.default_prompt, names_filter=lambda n: n.startswith("blocks.11.attn."))


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


def _visible(n: int) -> torch.Tensor:
    return torch.ones(n, n, dtype=torch.bool).tril()


def test_raw_scores_are_not_probabilities(config, trace, result):
    # Recomputed here from the model's own queries and keys, independently of the hook's scores.
    # Planted bug: reading `attn.pattern` as the scores failed this test (no score below 0).
    assert (result.layer, result.head) == (11, 1)
    q = trace["blocks.11.attn.rot_q"][1]
    k = trace["blocks.11.attn.rot_k"][1 // (config.num_attention_heads // config.num_key_value_heads)]
    scores = (q @ k.T / math.sqrt(config.head_dim))[_visible(trace.n_tokens)]
    noise = numerics.matmul_noise(q, k.T) / math.sqrt(config.head_dim)
    assert result.score_min == pytest.approx(float(scores.min()), abs=noise)
    assert result.score_max == pytest.approx(float(scores.max()), abs=noise)
    assert result.score_min < -5 and result.score_max > 1, "far outside [0, 1]"
    assert result.share_negative > 0.5
    # Every head of the layer, each from its own key/value head: the layer's range, from the same q and k.
    # Planted bug: the layer's range taken over every T×T score (the mask ignored) failed this test.
    group = config.num_attention_heads // config.num_key_value_heads
    keys = trace["blocks.11.attn.rot_k"].repeat_interleave(group, dim=0)
    every = (trace["blocks.11.attn.rot_q"] @ keys.transpose(1, 2)
             / math.sqrt(config.head_dim))[:, _visible(trace.n_tokens)]
    layer_noise = (numerics.matmul_noise(trace["blocks.11.attn.rot_q"].flatten(0, 1), keys.flatten(0, 1).T)
                   / math.sqrt(config.head_dim))
    assert result.layer_score_min == pytest.approx(float(every.min()), abs=layer_noise)
    assert result.layer_score_max == pytest.approx(float(every.max()), abs=layer_noise)


def test_the_only_limit_is_the_vectors_lengths(result):
    # Cauchy–Schwarz: |q·k|/√d ≤ ‖q‖‖k‖/√d. Scores are bounded by the vectors, not by a fixed range.
    assert max(abs(result.score_min), abs(result.score_max)) <= result.norm_limit * (1 + 1e-5)
    assert result.norm_limit > 10


def test_masked_entries_are_left_out(result):
    # Planted bug: taking every T×T score (the mask ignored) failed this test.
    n = len(result.tokens)
    assert result.visible == n * (n + 1) // 2
    seen = result.scores[np.tril_indices(n)]
    assert result.share_negative == pytest.approx(float((seen < 0).mean()), abs=1e-12)
    assert result.scores[np.triu_indices(n, k=1)].min() < result.score_min, "the masked entries would change it"


def test_softmax_turns_each_row_into_weights(result):
    # Planted bug: softmax without the causal mask in `by_hand` failed this test.
    n = len(result.tokens)
    visible = result.weights[np.tril_indices(n)]
    assert result.underflowed == 0 and (visible > 0).all() and (visible <= 1).all()
    assert (result.weights[np.triu_indices(n, k=1)] == 0).all(), "masked: exactly 0"
    assert result.row_sum_error <= result.row_sum_bound
    np.testing.assert_allclose(result.weights.sum(-1), 1, atol=result.row_sum_bound)
    assert result.by_hand_max_diff <= result.by_hand_bound, "softmax of the model's scores is the model's weights"
    assert result.weights_valid and raw_scores.status(result)[0]


@pytest.mark.parametrize("shift", [10.0, -100.0, 100.0, 0.5])
def test_adding_a_constant_to_every_score_of_a_row_changes_no_weight(runtime: Runtime, shift: float):
    # Planted bug: adding the shift times the key's position (not a constant) failed this test.
    run = DEMO.run(runtime, shift=shift)
    assert run.shift == shift
    assert run.shift_max_diff <= run.shift_bound < 1e-3
    assert run.shift_invariant


def test_a_shift_that_is_not_constant_does_change_the_weights(result):
    # The check can fail: a different amount per key is not a shift of the row.
    n = len(result.tokens)
    scores = torch.tensor(result.scores).masked_fill(~_visible(n), float("-inf"))
    ramp = torch.arange(n, dtype=torch.float32)  # a different amount for each key
    moved = torch.softmax(scores + ramp, -1) - torch.softmax(scores, -1)
    assert float(moved.abs().max()) > 100 * result.shift_bound


def test_an_underflowed_weight_is_explained_not_hidden(result):
    underflow = dataclasses.replace(result, underflowed=2, weight_min=0.0)
    assert underflow.weights_valid
    assert "2 weights are exactly 0" in raw_scores.explain(underflow)


@pytest.mark.parametrize("params,message", [
    ({"shift": 101}, "Constant added to every score"), ({"shift": "x"}, "decimal number"),
    ({"layer": 30}, "Layer 30"), ({"head": 9}, "Head 9"),
])
def test_bad_parameters_are_clear_errors(runtime: Runtime, params, message):
    with pytest.raises(UserInputError, match=message):
        DEMO.run(runtime, **params)


def test_compute_checks_the_layer_too(runtime: Runtime):
    with pytest.raises(UserInputError, match="Head 12"):
        raw_scores.compute(runtime, "The cat", layer=0, head=12, shift=1.0)


def _rendered(chart: alt.TopLevelMixin) -> tuple[float, list[str]]:
    svg = vl_convert.vegalite_to_svg(chart.properties(autosize=alt.AutoSizeParams(type="pad")).to_json())
    return float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1)), re.findall(r"<text[^>]*>([^<]*)</text>", svg)


@pytest.mark.parametrize("prompt,side_by_side", [
    (None, True),
    ("Internationalization considerations notwithstanding, extraordinary circumstances necessitated", True),
    (" ".join(["the cat sat on the mat"] * 4), False),
])
def test_both_maps_fit_the_page_with_every_label_whole(runtime: Runtime, prompt, side_by_side):
    run = DEMO.run(runtime, prompt)
    chart = DEMO.chart(run)
    spec = chart.to_dict()
    assert ("hconcat" in spec) == side_by_side
    width, texts = _rendered(chart)
    assert width <= 800
    assert not any("…" in text for text in texts)
    for label in run.tokens:
        assert texts.count(label) >= 4, f"{label!r} on both axes of both maps"


def test_the_score_map_is_diverging_around_zero_and_greys_the_mask(result):
    spec = DEMO.chart(result).to_dict()
    masked, scored = spec["hconcat"][0]["layer"]
    assert masked["transform"] == [{"filter": "datum.masked"}] and masked["mark"]["color"] == "#d9d9d9"
    scale = scored["encoding"]["color"]["scale"]
    assert scale["scheme"] == "blueorange" and scale["domain"][0] == -scale["domain"][1]
    assert spec["resolve"]["scale"]["color"] == "independent"


def test_explanation_headline_and_details_use_this_run(result):
    text = raw_scores.explain(result)
    assert f"**{result.score_min:.1f} to {result.score_max:.1f}**" in text
    assert f"**{result.share_negative:.0%}**" in text and f"{result.shift_max_diff:.0e}" in text
    assert 80 <= len(text.split()) <= 150
    headline = dict(raw_scores.headline(result))
    assert headline["Negative scores"] == f"{result.share_negative:.0%}"
    assert headline["Max change, all scores +10"] == f"{result.shift_max_diff:.0e}"
    details = raw_scores.details(result)
    assert "trace['blocks.11.attn.scores_unmasked'][1]" in details and "masked + 10" in details
