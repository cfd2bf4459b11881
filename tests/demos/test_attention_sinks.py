"""Attention sinks: most SmolLM2 heads put most of their weight on token 0, and token 0's state is huge."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kqv_demo import numerics
from kqv_demo.demos import attention_sinks as demo_module
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime

DEMO = demo_module.DEMO


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


def test_every_head_is_counted(runtime: Runtime, result):
    config = runtime.smollm2.model.config
    assert result.sink_weight_a.shape == (config.num_hidden_layers, config.num_attention_heads)
    assert result.n_heads == config.num_hidden_layers * config.num_attention_heads == 270
    assert ((0 <= result.sink_weight_a) & (result.sink_weight_a <= 1)).all()


def test_more_than_a_third_of_heads_sink_for_each_default_prompt(result):
    assert result.count_a > result.n_heads / 3
    assert result.count_b > result.n_heads / 3
    assert DEMO.status(result)[0]


def test_which_heads_sink_depends_on_the_prompt(result):
    # claim attention-maps-reveal-reasoning: sinks are not the same heads "regardless of the sentence"
    assert result.count_both <= min(result.count_a, result.count_b)
    assert result.count_either > result.count_both
    assert result.count_both < result.n_heads


def test_sink_weights_match_the_models_own_attention_output(runtime: Runtime, result):
    model, tokenizer = runtime.smollm2.model, runtime.smollm2.tokenizer
    ids = torch.tensor([tokenizer(result.prompt_a, add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        attentions = model(ids, output_attentions=True).attentions
    assert len(attentions) == model.config.num_hidden_layers
    expected = np.stack([a[0, :, 1:, 0].mean(-1).numpy() for a in attentions])
    # the demo's weights pass through our hook points, these through transformers' own output: other code on
    # the same numbers, so within the rounding of an attention weight (kqv_demo.numerics)
    assert (np.abs(result.sink_weight_a - expected) <= numerics.weight_noise(expected, ids.shape[-1])).all()


def test_token_zero_has_a_massive_activation_from_layer_12(result):
    ratio = result.norm_ratio
    assert ratio[12] > demo_module.MASSIVE_RATIO
    assert (ratio[12:] > demo_module.MASSIVE_RATIO).mean() > 0.8
    assert ratio.max() > 100
    assert (ratio[:9] < demo_module.MASSIVE_RATIO).all(), "not in the early layers"
    # content/claims/attention-maps-reveal-reasoning.yaml: "norm about 22,700" (first token "The")
    assert result.first_token_a == "The"
    norm = float(result.norm_token0[12])
    assert abs(norm - 22700) < 50 - numerics.STATE_NOISE * norm, "rounds to 22,700 on every CPU"


def test_token_zero_depends_only_on_itself(runtime: Runtime, result):
    # Causal mask: token 0 reads only itself, so any prompt starting with "The" gives the same norms.
    other = DEMO.run(runtime, "The capital of France is Paris.")
    # the same computation for token 0, but in a pass of another length: other kernel blocking, so within rounding
    np.testing.assert_allclose(other.norm_token0, result.norm_token0, rtol=numerics.STATE_NOISE)


def test_a_higher_threshold_counts_fewer_heads(runtime: Runtime, result):
    strict = DEMO.run(runtime, threshold=0.8)
    assert strict.count_a == int((result.sink_weight_a > 0.8).sum()) < result.count_a


def test_single_token_prompts_are_refused(runtime: Runtime):
    with pytest.raises(UserInputError, match="single token"):
        DEMO.run(runtime, "Hello")
    with pytest.raises(UserInputError, match="second prompt"):
        DEMO.run(runtime, other="Hello")
    with pytest.raises(UserInputError, match="out of range"):
        DEMO.run(runtime, threshold=1.5)


def test_chart_and_words_describe_this_run(result):
    spec = DEMO.chart(result).to_dict()
    assert len(spec["vconcat"]) == 2 and len(spec["vconcat"][0]["hconcat"]) == 2
    text = DEMO.explain(result)
    assert f"{result.count_a} heads" in text and f"only {result.count_both} do so in both" in text
    assert 60 <= len(text.split()) <= 150
    assert 2 <= len(DEMO.headline(result)) <= 4


def test_every_layer_is_labelled_in_both_grids(result):
    spec = DEMO.chart(result).to_dict()
    for grid in spec["vconcat"][0]["hconcat"]:
        assert grid["height"] >= 14 * result.sink_weight_a.shape[0], "room for each layer's label"
        for layer in grid["layer"]:
            assert layer["encoding"]["y"]["axis"]["labelOverlap"] is False, "layers 0 and 11 must be labelled"


def test_details_code_lines_fit_the_code_block(result):
    text = DEMO.details(result)
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert "[9] per layer" in code
    assert max(len(line) for line in code.splitlines()) <= 80
