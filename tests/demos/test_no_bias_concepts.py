"""No biases, graded neurons: checked against SmolLM2's parameters and a real forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kqv_demo import numerics
from kqv_demo.demos import no_bias_concepts as demo_module
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime

DEMO = demo_module.DEMO


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


def test_smollm2_has_no_bias_parameters(runtime: Runtime, result):
    model = runtime.smollm2.model
    assert result.smollm2_bias_names == []
    assert not [name for name, _ in model.named_parameters() if "bias" in name]
    assert not [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.bias is not None]
    assert result.attention_bias is False and result.mlp_bias is False
    assert model.config.attention_bias is False and model.config.mlp_bias is False
    assert result.smollm2_tensors == len(list(model.named_parameters()))


def test_minilm_has_bias_vectors(runtime: Runtime, result):
    model = runtime.minilm.model
    names = [name for name, _ in model.named_parameters() if name.endswith("bias")]
    assert result.minilm_bias_names == names
    # content/claims/biases-switch-neurons-on-and-off.yaml: "50 bias vectors: 8 in each of its 6 layers
    # plus the embedding LayerNorm and the pooler"
    assert len(names) == 50 == 8 * model.config.num_hidden_layers + 2
    assert result.minilm_bias_values == sum(p.numel() for name, p in model.named_parameters() if name.endswith("bias"))
    assert "8 in each of 6 layers" in DEMO.details(result)


def test_the_activations_are_the_input_of_down_proj(runtime: Runtime, result):
    config = runtime.smollm2.model.config
    assert result.d_mlp == config.intermediate_size
    trace = runtime.trace(DEMO.default_prompt, names_filter=lambda name: name.startswith(f"blocks.{result.layer}.mlp"))
    np.testing.assert_array_equal(trace[f"blocks.{result.layer}.mlp.post"][-1].numpy(), result.last_activations)
    down = runtime.parameter(f"model.layers.{result.layer}.mlp.down_proj.weight")
    activations = torch.from_numpy(result.last_activations)
    recomputed = down @ activations
    # our matrix-vector product and the model's down_proj: other kernels, so within the derived float32 bound
    noise = numerics.matmul_noise(down, activations[:, None])
    assert float((recomputed - trace[f"blocks.{result.layer}.mlp_out"][-1]).abs().max()) <= noise


def test_neuron_counts_for_50_and_90_percent(result):
    magnitude = np.sort(np.abs(result.last_activations))[::-1]
    total = magnitude.sum()
    for share, count in ((0.5, result.neurons_for_half[-1]), (0.9, result.neurons_for_90[-1])):
        assert magnitude[:count].sum() >= share * total * (1 - 1e-6)
        assert magnitude[: count - 1].sum() < share * total


def test_activation_is_spread_over_many_neurons_for_every_token(result):
    assert len(result.neurons_for_half) == len(result.tokens)
    assert result.neurons_for_half.min() > result.d_mlp / 20
    assert result.neurons_for_90.min() > result.d_mlp / 4
    assert DEMO.status(result)[0]


def test_activations_are_graded_not_on_off(result):
    assert result.near_zero < 0.5, "most neurons are not off"
    assert result.above_one < 0.05, "and few are strongly on"
    assert result.share(0.01, 1.0) > 0.5, "most lie in between"
    assert 0.3 < result.negative < 0.7, "SiLU-gated products take both signs"
    total = result.share(0, 0.01) + result.share(0.01, 0.1) + result.share(0.1, 1) + result.share(1)
    assert total == pytest.approx(1.0)


def test_top_neuron_is_the_largest_for_the_last_token(result):
    assert abs(result.top_value) == np.abs(result.last_activations).max()
    assert result.top_neuron_by_token[-1] == result.top_value
    positions = result.top_positions(len(result.tokens))
    assert sorted(positions) == list(range(len(result.tokens)))


def test_layer_out_of_range_is_a_clear_error(runtime: Runtime):
    with pytest.raises(UserInputError, match="Layer 30"):
        DEMO.run(runtime, layer=30)


def test_chart_and_words_describe_this_run(result):
    spec = DEMO.chart(result).to_dict()
    assert len(spec["hconcat"]) == 2
    bars, zero = spec["hconcat"][0]["layer"]
    ticks = bars["encoding"]["x"]["axis"]["values"]
    assert 0 in ticks and min(ticks) >= result.last_activations.min() and max(ticks) <= result.last_activations.max()
    assert bars["encoding"]["x"]["bin"]["anchor"] == 0, "a bin edge at 0: bars split at the sign"
    assert zero["mark"]["type"] == "rule" and spec["datasets"][zero["data"]["name"]] == [{"activation": 0.0}]
    assert f"{result.negative:.0%} of the neurons are negative" in bars["title"]["subtitle"]
    text = DEMO.explain(result)
    assert "no bias parameters" in text and f"{result.neurons_for_half[-1]} neurons" in text
    assert 60 <= len(text.split()) <= 150
    assert len(DEMO.headline(result)) == 4


@pytest.mark.parametrize("low,high", [(-1.34, 2.88), (-4.1, 2.2), (-29.8, 37.6), (-0.03, 0.21)])
def test_histogram_ticks_are_round_and_include_zero(low, high):
    ticks = demo_module._ticks_through_zero(low, high)
    assert 0 in ticks and 3 <= len(ticks) <= 11
    assert low <= ticks[0] and ticks[-1] <= high
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])
    mantissa = steps[0] / 10 ** np.floor(np.log10(steps[0]))
    assert round(mantissa, 6) in (1, 2, 5)
