"""Fixed depth: every prompt runs all layers once; depth is fixed by the config, not by the prompt."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kqv_demo import numerics
from kqv_demo.demos import fixed_depth
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime

DEMO = fixed_depth.DEMO


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


@pytest.mark.parametrize("prompt,other", [
    (None, None),  # the defaults: an easy and an ambiguous prompt
    ("Hi there", "After a long and winding discussion about rivers, money and benches, the word bank was"),
])
def test_every_prompt_runs_every_layer_exactly_once(runtime: Runtime, prompt, other):
    params = {} if other is None else {"other": other}
    result = DEMO.run(runtime, prompt, **params)
    layers = runtime.smollm2.model.config.num_hidden_layers
    assert result.n_layers == layers
    assert result.blocks_run == [layers, layers]
    assert result.distinct_layers == [layers, layers]
    assert (result.calls_per_layer == 1).all() and result.calls_per_layer.shape == (2, layers)
    assert result.hidden_states == [layers + 1, layers + 1]
    assert result.minilm_blocks_run == [runtime.minilm.model.config.num_hidden_layers] * 2
    ok, _ = fixed_depth.status(result)
    assert ok


def test_the_counts_quoted_in_the_bank(result):
    # content/claims/number-of-layers-is-decided-dynamically.yaml: "exactly 31 hidden states ... 30 layers"
    assert result.hidden_states == [31, 31]
    # content/claims/transformers-have-a-fixed-number-of-layers.yaml:
    # "all-MiniLM-L6-v2 has 6 layers and SmolLM2-135M 30"
    assert result.minilm_layers == 6 and result.n_layers == 30


def test_parameter_counts_quoted_in_the_bank(runtime: Runtime, result):
    config = runtime.smollm2.model.config
    d, head, inner = config.hidden_size, config.head_dim, config.intermediate_size
    attention = 2 * d * config.num_attention_heads * head + 2 * d * config.num_key_value_heads * head
    assert result.params_per_layer == attention + 3 * d * inner + 2 * d  # no biases anywhere
    # content/claims/layer-count-is-a-hyperparameter.yaml: 3,540,096 per layer; about 106.2 M in the
    # 30 layers; 28.3 M in the tied embedding; about 134.5 M in total.
    assert result.params_per_layer == 3_540_096
    assert round(result.params_in_layers / 1e6, 1) == 106.2
    assert round(result.embedding_params / 1e6, 1) == 28.3
    assert round(result.total_params / 1e6, 1) == 134.5
    assert result.total_params == result.params_in_layers + result.embedding_params + d  # + the final norm


def test_relative_update_leaves_out_token_zero(runtime: Runtime, result):
    trace = runtime.trace(result.prompts[0])
    layer = 20
    pre, post = trace[f"blocks.{layer}.resid_pre"], trace[f"blocks.{layer}.resid_post"]
    per_token = (post - pre).norm(dim=-1) / pre.norm(dim=-1)
    # The demo reads both prompts in one packed pass, this test in a pass of its own, so each state may differ
    # by STATE_NOISE of its size; a difference post − pre of relative size u then by about (2 / u + 1) times that.
    update = float(per_token[1:].mean())
    assert result.relative_update[0, layer] == pytest.approx(update, rel=numerics.STATE_NOISE * (2 / update + 1))
    cosine = torch.nn.functional.cosine_similarity(pre[1:], post[1:], dim=-1).mean()
    assert (abs(result.cosine[0, layer] - float(cosine))
            <= 2 * numerics.STATE_NOISE + numerics.cosine_noise(pre.shape[-1]))
    assert float(pre[0].norm()) > 50 * float(pre[1:].norm(dim=-1).max()), "token 0's massive activation"


def test_the_last_layers_are_not_idle(result, config):
    # later-layers-barely-change-the-representation: partly; the final layer changes the state more
    # than any of the middle layers 3-19, for both prompts.
    for row in result.relative_update:
        assert row[-1] > row[3:20].max()
    assert (result.cosine[:, 1:] > 0).all() and (result.cosine <= 1 + numerics.cosine_noise(config.hidden_size)).all()


def test_the_amount_of_change_differs_but_the_depth_does_not(result):
    assert not np.allclose(result.relative_update[0], result.relative_update[1], atol=1e-3)
    assert result.blocks_run[0] == result.blocks_run[1]


def test_a_one_token_prompt_is_a_clear_error(runtime: Runtime):
    with pytest.raises(UserInputError, match="single token"):
        DEMO.run(runtime, "Paris")


def test_explanation_and_chart_describe_this_run(result):
    text = fixed_depth.explain(result)
    assert "all 30 of SmolLM2's layers" in text and "3,540,096" in text
    assert 60 <= len(text.split()) <= 150
    spec = fixed_depth.chart(result).to_dict()
    y = spec["encoding"]["y"]
    assert y["scale"]["type"] == "log"
    # Ticks at powers of ten only, from just below the smallest update to just above the largest.
    ticks = y["axis"]["values"]
    assert ticks == [10.0 ** k for k in range(round(np.log10(ticks[0])), round(np.log10(ticks[-1])) + 1)]
    assert 1.0 in ticks and y["scale"]["domain"] == [ticks[0], ticks[-1]]
    assert ticks[0] <= result.relative_update.min() < 10 * ticks[0]
    assert ticks[-1] / 10 < result.relative_update.max() <= ticks[-1]
    assert len(spec["datasets"][spec["data"]["name"]]) == 2 * result.n_layers
