"""Values are vectors mixed by the attention weights; the output text comes from the LM head."""

from __future__ import annotations

import pytest
import torch

from kqv_demo import numerics
from kqv_demo.demos import values_not_text
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime
from tests.quoted import assert_quoted

DEMO = values_not_text.DEMO


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


@pytest.mark.parametrize("layer,head", [(3, 4), (0, 0), (3, 8), (17, 2), (29, 6)])
def test_weights_times_values_is_the_head_output_and_keys_are_not(runtime: Runtime, layer, head):
    result = DEMO.run(runtime, layer=layer, head=head)
    # our weights @ V and the model's batched matmul: other kernels, so within the derived float32 bound
    assert result.weights_v_max_diff <= result.weights_v_tolerance
    assert result.layer_weights_v_max_diff <= result.weights_v_tolerance < 1e-3
    assert result.weights_k_max_diff > 0.1
    assert result.layer_weights_k_min_diff > 0.1
    assert values_not_text.status(result)[0]


def test_the_checklists_layer_3_setting(runtime: Runtime):
    # content/claims/attention-weights-combine-key-vectors.yaml says weights × K is "off by up to 7.8"
    # in layer 3 (prompt not stated). We do not copy that number: a large miss is the fact asserted.
    result = DEMO.run(runtime, "The cat sat on the mat because it was tired.", layer=3, head=8)
    assert result.weights_v_max_diff <= result.weights_v_tolerance
    assert result.layer_weights_k_max_diff > 1.0


def test_values_exist_for_every_prompt_token_before_any_output(runtime: Runtime, config, result):
    tokens = len(runtime.tokenize(DEMO.default_prompt)[0])
    assert result.value_shape == (config.num_key_value_heads, tokens, config.head_dim)
    assert result.values_in_prompt == tokens * config.num_key_value_heads * config.num_hidden_layers
    # The forward pass that produces the first output token already holds every prompt token's values.
    _, _, steps = runtime.generate(DEMO.default_prompt, 1, names_filter=lambda n: n == "blocks.3.attn.v")
    first = steps[0]
    assert tuple(first.activations["blocks.3.attn.v"].shape) == result.value_shape
    assert first.token == result.chosen_token
    # the generation's first pass and the demo's own product with the LM head: other kernels
    assert abs(first.probability - result.chosen_probability) <= numerics.probability_noise(result.chosen_probability)


def test_the_text_comes_from_the_lm_head(runtime: Runtime, config, result):
    assert result.logits_max_diff <= numerics.LOGIT_NOISE  # the demo's product vs the model's: other kernels
    assert result.vocab_size == config.vocab_size
    assert result.lm_head_shape == (config.vocab_size, config.hidden_size)
    assert result.chosen_token == result.top_tokens[0]
    assert list(result.top_probabilities) == sorted(result.top_probabilities, reverse=True)
    assert len(result.top_tokens) == values_not_text.TOP_K
    # The probabilities come from the model's own logits for the last prompt token.
    trace = runtime.trace(DEMO.default_prompt, names_filter=lambda n: False)
    probabilities = torch.softmax(trace.logits[-1], dim=-1)
    assert (abs(float(probabilities.max()) - result.chosen_probability)
            <= numerics.probability_noise(result.chosen_probability))


def test_p_paris_quoted_in_the_claims(result):
    # content/claims/model-queries-its-weights-for-answers.yaml and
    # response-sampled-from-primed-representations.yaml:
    # P(" Paris" | "The Eiffel Tower is located in the city of") = 0.70
    assert DEMO.default_prompt == "The Eiffel Tower is located in the city of"
    assert result.chosen_token == " Paris"
    assert_quoted(result.chosen_probability, "0.70", numerics.probability_noise(result.chosen_probability),
                  'P(" Paris")')
    # "one entry of a distribution over its 49,152-token vocabulary"
    assert result.vocab_size == 49152


def test_explanation_headline_and_chart_use_this_run(result):
    text = values_not_text.explain(result)
    assert "“·Paris” (0.70)" in text and f"{result.weights_k_max_diff:.2f}" in text
    assert 60 <= len(text.split()) <= 150
    assert dict(values_not_text.headline(result))["Next token (greedy)"] == "“·Paris” 0.70"
    spec = values_not_text.chart(result).to_dict()
    labels = spec["encoding"]["x"]["sort"]
    assert len(labels) == values_not_text.TOP_K and labels[0].endswith("·Paris"), "as in the text and the metric"


@pytest.mark.parametrize("params,message",
                         [({"layer": 30}, "Layer 30"), ({"head": 9}, "Head 9"), ({"layer": "x"}, "number")])
def test_bad_input_is_a_clear_error(runtime: Runtime, params, message):
    with pytest.raises(UserInputError, match=message):
        DEMO.run(runtime, **params)


def test_compute_rejects_a_head_that_does_not_exist(runtime: Runtime):
    with pytest.raises(UserInputError, match="Head 12"):
        values_not_text.compute(runtime, "The cat sat", layer=3, head=12)


def test_details_show_this_runs_numbers(result):
    text = values_not_text.details(result)
    assert "{result" not in text and "{layer" not in text
    assert "```python" in text
