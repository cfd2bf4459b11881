"""Dot product, not KL: real queries/keys are not distributions; the weights are softmax(q·k/√d)."""

from __future__ import annotations

import pytest

from kqv_demo import numerics
from kqv_demo.content.loader import load_bank
from kqv_demo.demos import DEMOS
from kqv_demo.demos.dot_product_not_kl import worked_example
from kqv_demo.runtime import Runtime

DEMO = DEMOS["dot-product-not-kl"]


def test_the_dialogues_kl_example_done_right():
    example = worked_example()
    assert example.kl_nats == pytest.approx(0.0946, abs=1e-4)
    assert example.kl_bits == pytest.approx(0.1365, abs=1e-4)
    assert example.reverse_kl_nats == pytest.approx(0.1069, abs=1e-4)
    assert example.ln_1_25 == pytest.approx(0.2231, abs=1e-4)
    assert example.dialogue_terms_sum == pytest.approx(0.0934, abs=1e-4)
    assert example.plain_average_of_logs == pytest.approx(-0.0215, abs=1e-4)
    assert example.dot_product == pytest.approx(0.34)
    assert abs(example.kl_nats - example.dialogue_result) > 0.03, "the dialogue's 0.135 is wrong"


def test_the_bank_quotes_the_same_numbers():
    claim = load_bank(dialogue=False).claims["worked-kl-example-gives-0-135"]
    assert claim.quiz.numeric.answer == pytest.approx(worked_example().kl_nats, abs=claim.quiz.numeric.tolerance)


@pytest.mark.parametrize("layer,head", [(0, 0), (5, 0), (14, 7), (29, 3)])
def test_queries_are_not_distributions_and_dot_products_match(runtime: Runtime, layer: int, head: int):
    result = DEMO.run(runtime, layer=layer, head=head)
    assert result.query_min < 0 and result.keys_min < 0
    assert abs(result.query_sum - 1) > 0.1
    # our keys @ q and the model's batched matmul: other kernels, so within the derived float32 bound
    assert result.dot_product_max_diff <= result.dot_product_tolerance < 1e-3
    assert abs(result.model_weights.sum() - 1) <= numerics.sums_to_one_noise(len(result.model_weights))


def test_a_kl_ranking_does_not_reproduce_the_weights(runtime: Runtime):
    worst = max(DEMO.run(runtime, layer=layer, head=0).kl_max_diff for layer in (3, 10, 20))
    assert worst > 0.05


def test_the_chart_title_names_the_last_token_not_its_axis_label(runtime: Runtime):
    """Issue #14, 12: "the last token “11 .”" read as a token "11 ."; the title gives the token and its position."""
    result = DEMO.run(runtime, "The capital of France is Paris.")
    title = DEMO.chart(result).to_dict()["title"]
    text = title["text"] if isinstance(title, dict) else title
    text = " ".join(text) if isinstance(text, list) else text
    position = len(result.key_tokens) - 1
    assert f"“.” (position {position})" in text and f"“{position} " not in text
