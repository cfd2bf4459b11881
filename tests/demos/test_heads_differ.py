"""Heads are not an ensemble of identical models: each attends differently and has its own block of W_Q."""

from __future__ import annotations

import math
import re
from itertools import combinations

import altair as alt
import numpy as np
import pytest
import torch
import vl_convert

from kqv_demo import numerics
from kqv_demo.content.loader import load_bank
from kqv_demo.demos import heads_differ
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime

DEMO = heads_differ.DEMO


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


def _entropy_bits(p: np.ndarray) -> np.ndarray:
    return -np.where(p > 0, p * np.log2(np.where(p > 0, p, 1)), 0).sum(-1)


def _js_by_entropies(p: np.ndarray, q: np.ndarray) -> float:
    """JS = H(M) − (H(P) + H(Q)) / 2, mean over rows: another formula than the demo's two KLs."""
    return float((_entropy_bits((p + q) / 2) - (_entropy_bits(p) + _entropy_bits(q)) / 2).mean())


def test_every_pair_of_heads_attends_differently(result):
    # Planted bug: comparing each head with itself (js(choosing[a], choosing[a])) failed this test.
    assert result.rows_compared == len(result.tokens) - 1
    js = result.js_of(result.pairs)
    assert len(js) == 36
    assert js.min() > 0.01, "far beyond what rounding could cause (JS_ROUNDING_BITS = 1.8e-7)"
    assert result.all_heads_differ and heads_differ.status(result)[0]
    rows = result.patterns[:, 1:].astype(np.float64)
    for a, b in result.pairs:
        assert result.js_bits[a, b] == pytest.approx(_js_by_entropies(rows[a], rows[b]), abs=1e-9)


def test_each_pattern_is_the_softmax_of_its_own_query_and_its_groups_keys(runtime: Runtime, config, result):
    # From the recorded queries and keys: pattern[h] = softmax(q_h·k_{kv_head_of[h]}ᵀ/√d + causal mask).
    # Planted bug: kv_head_of = h % 3 (the wrong grouping) failed this test.
    trace = runtime.trace(DEMO.default_prompt,
                          names_filter=lambda n: n in ("blocks.10.attn.rot_q", "blocks.10.attn.rot_k"))
    q, k = trace["blocks.10.attn.rot_q"], trace["blocks.10.attn.rot_k"]
    n = trace.n_tokens
    future = torch.ones(n, n, dtype=torch.bool).triu(1)
    for h in range(config.num_attention_heads):
        keys = k[result.kv_head_of[h]]
        by_hand = torch.softmax((q[h] @ keys.T / math.sqrt(config.head_dim)).masked_fill(future, float("-inf")), -1)
        noise = numerics.attention_weights_noise(q[h], keys)
        np.testing.assert_allclose(result.patterns[h], by_hand.numpy(), rtol=0, atol=noise, err_msg=f"head {h}")


def test_heads_that_share_keys_and_values_still_differ(config, result):
    # Planted bug: kv_head_of = h % 3 (the wrong grouping) failed this test.
    group = config.num_attention_heads // config.num_key_value_heads
    assert result.kv_head_of == [h // group for h in range(config.num_attention_heads)]
    assert result.sharing_pairs == [(a, b) for a, b in combinations(range(9), 2) if a // 3 == b // 3]
    assert len(result.sharing_pairs) == 9
    assert result.js_of(result.sharing_pairs).min() > 0.01


def test_each_head_has_its_own_block_of_w_q(runtime: Runtime, config, result):
    # Planted bug: building every head's block from head 0's rows failed this test.
    d = config.head_dim
    assert result.w_q_shape == (config.num_attention_heads * d, config.hidden_size)
    assert result.query_shape == (config.num_attention_heads, len(result.tokens), d)
    w_q = runtime.parameter("model.layers.10.self_attn.q_proj.weight").double()
    for a, b in [(0, 1), (3, 4), (2, 8)]:
        block_a, block_b = w_q[a * d:(a + 1) * d].flatten(), w_q[b * d:(b + 1) * d].flatten()
        cosine = float(block_a @ block_b / (block_a.norm() * block_b.norm()))
        assert result.w_q_cosine[a, b] == pytest.approx(cosine, abs=1e-9)
    off = ~np.eye(9, dtype=bool)
    np.testing.assert_allclose(np.diag(result.w_q_cosine), 1, atol=1e-9)
    np.testing.assert_allclose(np.diag(result.w_q_overlap), 1, atol=1e-9)
    assert result.w_q_cosine[off].max() < 0.5 and result.w_q_overlap[off].max() < 0.5
    assert result.w_q_blocks_differ


def test_subspace_overlap_is_one_for_the_same_space_and_zero_for_orthogonal_ones():
    generator = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(576, 128, generator=generator, dtype=torch.float64)).Q
    same_space = torch.stack([basis[:, :64].T, (basis[:, :64] @ torch.linalg.qr(torch.randn(64, 64, generator=generator,
                              dtype=torch.float64)).Q).T])  # one space in two different bases
    orthogonal = torch.stack([basis[:, :64].T, basis[:, 64:].T])
    assert float(heads_differ.subspace_overlap(same_space)[0, 1]) == pytest.approx(1, abs=1e-9)
    assert float(heads_differ.subspace_overlap(orthogonal)[0, 1]) == pytest.approx(0, abs=1e-9)
    random = torch.randn(40, 64, 576, generator=generator, dtype=torch.float64)
    overlaps = heads_differ.subspace_overlap(random)
    chance = overlaps[~torch.eye(40, dtype=torch.bool)].mean()
    assert float(chance) == pytest.approx(64 / 576, abs=0.01), "random 64-dim subspaces of 576 dims"


def test_js_divergence_is_in_bits():
    # Planted bug: natural logarithms (nats) instead of log2 failed this test (disjoint rows gave 0.69).
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=torch.float64)
    q = torch.tensor([[0.0, 1.0], [0.5, 0.5]], dtype=torch.float64)
    assert heads_differ.js_divergence_bits(p, q).tolist() == pytest.approx([1.0, 0.0])


CLAIMS_RUNNING_THIS_DEMO = sorted(claim.id for claim in load_bank(dialogue=False).claims.values()
                                  if claim.demo and claim.demo.id == DEMO.id)


@pytest.mark.parametrize("claim_id", CLAIMS_RUNNING_THIS_DEMO)
def test_each_claim_that_cites_this_demo_sees_the_same_margins(runtime: Runtime, claim_id: str):
    # A claim's own prompt and layer must show what the evidence says with the margins asserted above.
    # Planted bug: a claim's params back to {layer: 6} failed this test (heads 0 and 1 only 0.0085 bits apart).
    link = load_bank(dialogue=False).claims[claim_id].demo
    run = DEMO.run(runtime, link.prompt, **link.params)
    off = ~np.eye(run.n_heads, dtype=bool)
    assert run.js_of(run.pairs).min() > 0.01 and run.js_of(run.sharing_pairs).min() > 0.01
    assert run.w_q_cosine[off].max() < 0.5 and run.w_q_overlap[off].max() < 0.5
    assert run.all_heads_differ and run.w_q_blocks_differ and heads_differ.status(run)[0]


@pytest.mark.parametrize("layer", [0, 15, 29])
def test_heads_differ_in_other_layers(runtime: Runtime, layer: int):
    run = DEMO.run(runtime, layer=layer)
    assert run.all_heads_differ and run.w_q_blocks_differ and heads_differ.status(run)[0]


def test_a_one_token_prompt_is_explained_not_flagged(runtime: Runtime):
    run = DEMO.run(runtime, "Hello")
    assert run.rows_compared == 0
    assert heads_differ.status(run)[0]
    assert "one-token prompt" in heads_differ.explain(run)
    assert dict(heads_differ.headline(run))["Head pairs, JS of weights (bits)"] == "–"


@pytest.mark.parametrize("layer,message", [(30, "Layer 30"), (-1, "Layer -1")])
def test_bad_layer_is_a_clear_error(runtime: Runtime, layer, message):
    with pytest.raises(UserInputError, match=message):
        DEMO.run(runtime, layer=layer)


def test_compute_checks_the_layer_too(runtime: Runtime):
    with pytest.raises(UserInputError, match="Layer 31"):
        heads_differ.compute(runtime, "The cat", layer=31)


def _rendered(chart: alt.TopLevelMixin) -> tuple[float, list[str]]:
    svg = vl_convert.vegalite_to_svg(chart.properties(autosize=alt.AutoSizeParams(type="pad")).to_json())
    return float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1)), re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_the_chart_shows_nine_patterns_and_two_distance_matrices_within_the_page(result):
    chart = DEMO.chart(result)
    spec = chart.to_dict()
    patterns, matrices = spec["vconcat"]
    assert patterns["columns"] == result.n_kv_heads and patterns["spec"]["encoding"]["x"]["sort"] == result.tokens
    assert len(matrices["hconcat"]) == 2
    width, texts = _rendered(chart)
    assert width <= 800
    assert not any("…" in text for text in texts)
    for h in range(result.n_heads):
        assert f"head {h} (K/V {h // 3})" in texts
    for label in result.tokens:
        assert texts.count(label) >= 2, f"{label!r} on the outer axes of the small multiples"


def test_a_long_prompt_charts_only_the_first_positions(runtime: Runtime):
    run = DEMO.run(runtime, " ".join(["the cat sat on the mat"] * 6))
    assert len(run.tokens) > heads_differ.CHART_TOKENS
    spec = DEMO.chart(run).to_dict()
    patterns = spec["vconcat"][0]
    assert patterns["spec"]["encoding"]["x"]["sort"] == run.tokens[:heads_differ.CHART_TOKENS]
    assert f"first {heads_differ.CHART_TOKENS} of {len(run.tokens)} tokens" in patterns["title"]
    width, texts = _rendered(DEMO.chart(run))
    assert width <= 800 and not any("…" in text for text in texts)


def test_explanation_headline_and_details_use_this_run(result):
    text = heads_differ.explain(result)
    js = result.js_of(result.pairs)
    assert f"{js.min():.2f}–{js.max():.2f} bits" in text and f"{result.rows_compared} query rows" in text
    assert "0.11 for random ones" in text
    assert 80 <= len(text.split()) <= 150
    headline = dict(heads_differ.headline(result))
    assert headline["Head pairs, JS of weights (bits)"] == f"{js.min():.3f}–{js.max():.3f}"
    details = heads_differ.details(result)
    assert "W_Q.reshape(9, 64, 576)" in details and "[0, 0, 0, 1, 1, 1, 2, 2, 2]" in details
