"""Attention by hand: the formula reproduces the model's weights; each ingredient matters."""

from __future__ import annotations

import numpy as np
import pytest

from kqv_demo import numerics
from kqv_demo.demos import ATTENTION_BY_HAND, attention_by_hand
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import MINILM, Runtime


@pytest.fixture(scope="module")
def trace(runtime: Runtime):
    return runtime.trace(ATTENTION_BY_HAND.default_prompt)


@pytest.mark.parametrize("layer,head", [(0, 0), (3, 4), (11, 8), (17, 2), (29, 5)])
def test_hand_computation_matches_the_model(trace, layer: int, head: int):
    result = attention_by_hand.from_trace(trace, layer, head)
    # Our q @ kᵀ and the model's batched matmul are other kernels: equal up to float32 rounding, whose bound
    # (from this run's magnitudes, kqv_demo.numerics) holds on every CPU; a wrong formula misses by > 1e-2.
    assert result.max_abs_diff <= result.tolerance < 1e-3
    assert result.matches


def test_causal_mask_zeroes_the_upper_triangle_and_rows_sum_to_one(trace):
    for layer in range(trace.model.n_layers):
        result = attention_by_hand.from_trace(trace, layer, layer % trace.model.n_heads)
        upper = np.triu(result.model_weights, k=1)
        assert (upper == 0).all()  # exact on any CPU: a masked score (−3.4e38) makes exp underflow to 0
        n = len(result.tokens)
        assert (np.abs(result.model_weights.sum(axis=1) - 1) <= numerics.sums_to_one_noise(n)).all()
        visible = result.model_weights[np.tril_indices(len(result.tokens))]
        assert (visible > 0).all(), "softmax gives every visible key some weight"


def test_grouped_query_heads_share_key_value_heads(trace):
    shape = trace.model
    kv_heads = [attention_by_hand.from_trace(trace, 0, h).kv_head for h in range(shape.n_heads)]
    group = shape.n_heads // shape.n_kv_heads
    assert kv_heads == [h // group for h in range(shape.n_heads)]
    assert len(set(kv_heads)) == shape.n_kv_heads


def test_dropping_the_scale_or_the_mask_breaks_the_match(trace):
    unscaled = attention_by_hand.from_trace(trace, 5, 3, scaled=False)
    assert unscaled.max_abs_diff > 1e-2 > 10 * unscaled.tolerance and not unscaled.matches
    unmasked = attention_by_hand.from_trace(trace, 5, 3, masked=False)
    assert np.triu(unmasked.hand_weights, k=1).max() > 0
    assert unmasked.max_abs_diff > 1e-2 > 10 * unmasked.tolerance and not unmasked.matches
    # the triangle the explanation quotes is the MODEL's, whatever the hand recomputation did
    assert unmasked.upper_triangle_max == 0.0


def test_the_encoder_has_no_causal_mask(runtime: Runtime):
    trace = runtime.trace("The bank of the river was muddy.", model=MINILM)
    result = attention_by_hand.from_trace(trace, 2, 7)
    assert result.max_abs_diff <= result.tolerance
    assert result.upper_triangle_max > 0
    assert "no causal mask" in attention_by_hand.explanation(result)


@pytest.mark.parametrize("layer,head,message", [(30, 0, "Layer 30"), (-1, 0, "Layer -1"), (0, 9, "Head 9")])
def test_out_of_range_layer_or_head_is_a_clear_error(trace, layer, head, message):
    with pytest.raises(UserInputError, match=message):
        attention_by_hand.from_trace(trace, layer, head)


def test_explanation_and_chart_describe_this_run(trace):
    result = attention_by_hand.from_trace(trace, 3, 4)
    text = attention_by_hand.explanation(result)
    assert "They match" in text and "key/value head 1" in text
    spec = attention_by_hand.chart(result).to_dict()
    assert len(spec["hconcat"]) == 2, "the default sentence's two maps sit side by side"
    model_map, hand_map = spec["hconcat"]
    assert model_map["layer"][0]["encoding"]["x"]["sort"] == result.tokens
    assert "Grey cells" in spec["title"]["text"]
    # The causal mask leaves exact zeros (drawn grey); without it, the hand-computed map has none.
    assert (np.triu(result.model_weights, 1) == 0).all() and (np.triu(result.hand_weights, 1) == 0).all()
    unmasked = attention_by_hand.from_trace(trace, 3, 4, masked=False)
    assert (unmasked.hand_weights != 0).all()
    broken = attention_by_hand.explanation(attention_by_hand.from_trace(trace, 3, 4, scaled=False))
    assert "do **not** match" in broken and "√64 = 8" in broken
