"""Causal vs bidirectional: SmolLM2 never reads later tokens, MiniLM does (checked against the models)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kqv_demo import numerics
from kqv_demo.demos import causal_vs_bidirectional as demo_module
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime
from tests.quoted import assert_quoted

DEMO = demo_module.DEMO
DEPOSIT_MONEY = "I went to the bank to deposit money"


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


def test_defaults_are_the_sentences_quoted_in_the_claims():
    # content/claims/bert-uses-left-and-right-context.yaml: "I went to the bank to fish" / "... to deposit"
    params = {param.name: param.default for param in DEMO.params}
    assert DEMO.default_prompt == "I went to the bank to fish"
    assert params["other"] == "I went to the bank to deposit"
    assert params["word"] == "bank"


def test_smollm2_upper_triangle_is_exactly_zero_and_minilm_is_not(runtime: Runtime, result):
    assert result.smollm2_upper_max == 0.0
    assert (np.triu(result.smollm2_weights, k=1) == 0).all()
    assert np.triu(result.minilm_weights, k=1).sum() == pytest.approx(result.minilm_upper_sum, abs=1e-5)
    assert result.minilm_upper_sum > 0.5
    config = runtime.minilm.model.config
    assert result.minilm_upper_by_head.shape == (config.num_hidden_layers, config.num_attention_heads)
    # Most MiniLM heads read to the right; none is masked (no exact zeros above the diagonal).
    assert (result.minilm_upper_by_head > 0.5).mean() > 0.5
    assert (np.triu(result.minilm_weights, k=1)[np.triu_indices(result.n_rows_minilm, k=1)] > 0).all()


def test_minilm_tokens_have_cls_sep_and_lower_case_wordpieces(result):
    assert result.minilm_tokens[0].endswith("[CLS]") and result.minilm_tokens[-1].endswith("[SEP]")
    assert result.minilm_tokens[1] == "1 i"  # "I" lower-cased
    assert result.minilm_positions == (5, 5)  # [CLS] shifts "bank" by one
    assert result.smollm2_positions == (4, 4)


def test_bank_state_is_bit_identical_in_smollm2_at_every_layer(runtime: Runtime, result):
    # claims bert-uses-left-and-right-context / llms-are-based-on-bert: "bit-identical at every layer".
    # Exact on every CPU, not a tolerance: both sentences have the same number of tokens, so both passes run
    # the same kernels on the same shapes; every operation works row by row except attention, where the
    # later tokens get weight exactly 0 (exp underflows) and 0·v adds nothing. Different lengths would change
    # the shapes and so the order of adding: see the DEPOSIT_MONEY test below.
    assert result.same_prefix and result.same_length
    assert len(result.smollm2_diff_by_layer) == runtime.smollm2.model.config.num_hidden_layers
    assert result.smollm2_max_abs_diff == 0.0
    assert (result.smollm2_diff_by_layer == 0).all()
    assert DEMO.status(result)[0]


def test_bank_output_vector_differs_in_minilm(result):
    # claims bert-uses-left-and-right-context, llms-are-based-on-bert, bert-outputs-contextual-embeddings: "cosine
    # 0.85". Not 0.847: the cosine is 0.84666, within what rounding can do to it (2·STATE_NOISE) of 0.8465.
    assert_quoted(result.minilm_cosine, "0.85", 2 * numerics.STATE_NOISE, "MiniLM's cosine")
    assert len(result.minilm_cosine_by_layer) == 6


def test_independently_with_the_models_own_forward_pass(runtime: Runtime, result):
    small, mini = runtime.smollm2, runtime.minilm
    with torch.inference_mode():
        states = [
            small.model(torch.tensor([small.tokenizer(s, add_special_tokens=False)["input_ids"]]),
                        output_hidden_states=True).hidden_states
            for s in (result.sentence_a, result.sentence_b)
        ]
        # hidden_states[L + 1] is the output of block L, except the last, which is after the final norm.
        # Exact on every CPU for the reason given above: same lengths, same kernels, later tokens weighted 0.
        for layer in range(small.model.config.num_hidden_layers - 1):
            assert torch.equal(states[0][layer + 1][0, 4], states[1][layer + 1][0, 4])
        outputs = [mini.model(**mini.tokenizer(s, return_tensors="pt")).last_hidden_state[0, 5]
                   for s in (result.sentence_a, result.sentence_b)]
    cosine = float(torch.nn.functional.cosine_similarity(outputs[0], outputs[1], dim=0))
    # the same passes as the demo's (hook points are read-only), so only the cosine's own rounding
    assert abs(cosine - result.minilm_cosine) <= numerics.cosine_noise(outputs[0].numel())


def test_sentences_of_different_length_differ_only_by_rounding_in_smollm2(runtime: Runtime):
    result = DEMO.run(runtime, other=DEPOSIT_MONEY)
    assert result.same_prefix and not result.same_length
    assert result.smollm2_relative_diff <= demo_module.ROUNDING_LIMIT
    assert result.minilm_cosine < 0.9
    assert DEMO.status(result)[0]
    if result.smollm2_max_abs_diff > 0:
        assert "only rounding" in DEMO.explain(result)


def test_a_change_before_the_word_does_change_smollm2(runtime: Runtime):
    result = DEMO.run(runtime, other="We went to the bank to fish")
    assert not result.same_prefix
    assert result.smollm2_relative_diff > 1e-2
    passed, message = DEMO.status(result)
    assert not passed and "before the word" in message


def test_layer_mapping_keeps_relative_depth(runtime: Runtime):
    small = runtime.smollm2.model.config.num_hidden_layers
    mini = runtime.minilm.model.config.num_hidden_layers
    mapped = [demo_module.minilm_layer_for(layer, small, mini) for layer in range(small)]
    assert mapped[0] == 0 and mapped[-1] == mini - 1
    assert mapped == sorted(mapped) and set(mapped) == set(range(mini))
    result = DEMO.run(runtime, layer=small - 1, head=2)
    assert result.minilm_layer == mini - 1 and result.minilm_head == 2


def test_words_that_are_not_tokens_are_a_clear_error(runtime: Runtime):
    with pytest.raises(UserInputError, match="zebra"):
        DEMO.run(runtime, word="zebra")
    with pytest.raises(UserInputError, match="Type the word"):
        DEMO.run(runtime, word="  ")


def test_chart_and_words_describe_this_run(result):
    spec = DEMO.chart(result).to_dict()
    pair = spec.get("hconcat") or spec["vconcat"]
    assert len(pair) == 2
    assert pair[1]["layer"][0]["encoding"]["x"]["sort"] == result.minilm_tokens
    text = DEMO.explain(result)
    assert "bit-identical" in text and f"{result.minilm_cosine:.3f}" in text
    assert 60 <= len(text.split()) <= 150
    assert len(DEMO.headline(result)) == 4
