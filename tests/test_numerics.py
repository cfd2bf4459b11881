"""The float32 bounds hold for real kernels in different orders, and decisions need a margin."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kqv_demo import numerics


def _orders_of_adding(values: np.ndarray) -> list[float]:
    """One float32 sum of `values` in several orders: as given, reversed, sorted, pairwise (numpy),
    blocked by 16 (a vector unit), and torch's own kernel."""
    def sequential(items: np.ndarray) -> float:
        total = np.float32(0)
        for item in items:
            total = np.float32(total + item)
        return float(total)

    lanes = [sequential(values[lane::16]) for lane in range(16)]
    return [
        sequential(values), sequential(values[::-1]), sequential(np.sort(values)),
        float(np.sum(values, dtype=np.float32)), sequential(np.array(lanes, dtype=np.float32)),
        float(torch.from_numpy(values).sum()),
    ]


@pytest.mark.parametrize("length", [10, 100, 1000, 4096])
def test_sums_in_any_order_stay_within_sum_noise(length: int):
    generator = np.random.default_rng(length)
    for _ in range(20):
        scales = 10.0 ** generator.uniform(-3, 3, length)
        values = (generator.standard_normal(length) * scales).astype(np.float32)
        exact = math.fsum(float(v) for v in values)
        noise = numerics.sum_noise(length, float(np.abs(values).sum()))
        sums = _orders_of_adding(values)
        assert max(abs(s - exact) for s in sums) <= noise / 2  # each order against the exact sum
        assert max(sums) - min(sums) <= noise  # any two orders


def test_a_bound_without_the_length_would_be_broken():
    """The control: float32 rounding really does grow with the number of terms, so a bound of a few
    EPS (what one CPU's result might suggest) fails where sum_noise holds."""
    generator = np.random.default_rng(0)
    values = generator.uniform(0.5, 1.5, 4096).astype(np.float32)
    exact = math.fsum(float(v) for v in values)
    error = max(abs(s - exact) for s in _orders_of_adding(values))
    magnitude = float(np.abs(values).sum())
    assert error > 4 * numerics.EPS * magnitude
    assert error <= numerics.sum_noise(len(values), magnitude) / 2


def test_matmul_noise_bounds_float32_products_against_float64():
    generator = torch.Generator().manual_seed(1)
    for rows, inner, cols in [(7, 64, 7), (11, 576, 192), (1, 1536, 576)]:
        a = torch.randn(rows, inner, generator=generator) * 5
        b = torch.randn(inner, cols, generator=generator) * 5
        exact = a.double() @ b.double()
        by_kernel = (a @ b).double()
        by_columns = torch.stack([(a * b[:, j]).sum(-1) for j in range(cols)], dim=-1).double()
        noise = numerics.matmul_noise(a, b)
        assert float((by_kernel - exact).abs().max()) <= noise / 2
        assert float((by_columns - by_kernel).abs().max()) <= noise


def test_softmax_noise_covers_rounding_and_perturbed_scores():
    generator = torch.Generator().manual_seed(2)
    for length in (2, 11, 256):
        scores = torch.randn(50, length, generator=generator) * 8
        wiggle = 1e-4
        nudged = scores + (torch.rand(scores.shape, generator=generator) * 2 - 1) * wiggle
        exact = torch.softmax(scores.double(), dim=-1)
        rounded = float((torch.softmax(scores, dim=-1).double() - exact).abs().max())
        assert rounded <= numerics.softmax_noise(length)
        moved = float((torch.softmax(nudged, dim=-1).double() - exact).abs().max())
        assert moved <= numerics.softmax_noise(length, wiggle)


@pytest.mark.parametrize("length", [2, 12, 260, 4096])
def test_softmax_rows_sum_to_one_within_sums_to_one_noise(length: int):
    generator = torch.Generator().manual_seed(length)
    rows = torch.softmax(torch.randn(200, length, generator=generator) * 6, dim=-1)
    assert float((rows.sum(-1) - 1).abs().max()) <= numerics.sums_to_one_noise(length)
    assert float((rows.numpy().sum(-1) - 1).__abs__().max()) <= numerics.sums_to_one_noise(length)


@pytest.mark.parametrize("length", [64, 384, 576])
def test_the_cosine_of_a_vector_with_itself_is_within_cosine_noise_of_one(length: int):
    generator = torch.Generator().manual_seed(length)
    vectors = torch.randn(500, length, generator=generator) * torch.logspace(-2, 3, 500)[:, None]
    cosines = torch.nn.functional.cosine_similarity(vectors, vectors.clone(), dim=-1)
    assert float((1 - cosines).abs().max()) <= numerics.cosine_noise(length)


def test_probability_and_log_probability_noise_follow_the_logit_noise():
    logits = torch.randn(49152, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 4
    logits[7] = logits.max() + 3  # one likely token, as after "The capital of France is"
    shift = torch.rand(logits.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 2 - 1
    moved = logits + shift * numerics.LOGIT_NOISE
    p, q = torch.softmax(logits, -1), torch.softmax(moved, -1)
    assert bool(((q - p).abs().numpy() <= numerics.probability_noise(p.numpy())).all())
    # the worst case, one token down and every other up by LOGIT_NOISE, meets the bound: it is tight
    target = torch.arange(49152) == 7
    worst = torch.softmax(logits + numerics.LOGIT_NOISE - 2 * numerics.LOGIT_NOISE * target, -1)
    assert float(p[7] - worst[7]) == pytest.approx(numerics.probability_noise(float(p[7])), rel=1e-6)
    assert numerics.probability_noise(0.0) == numerics.probability_noise(1.0) == 0.0  # cannot move
    log_moved = (torch.log_softmax(moved, -1) - torch.log_softmax(logits, -1)).abs().max()
    assert float(log_moved) <= numerics.log_probability_noise()
    assert float((p * (p.log() - q.log())).sum()) <= numerics.log_probability_noise()


def test_decide_needs_a_clear_side_and_says_when_it_is_too_close():
    assert numerics.decide(1e-7, at_most=1e-5, at_least=1e-4, below="same", above="different") == "same"
    assert numerics.decide(0.24, at_most=1e-5, at_least=1e-4, below="same", above="different") == "different"
    assert numerics.decide(3e-5, at_most=1e-5, at_least=1e-4, below="same", above="different") is None
    with pytest.raises(ValueError, match="margin is empty"):
        numerics.decide(0.5, at_most=1.0, at_least=1.0, below=True, above=False)


def test_rounding_margin_is_the_distance_to_the_nearest_rounding_point():
    assert numerics.rounding_margin(0.7725480, 3) == pytest.approx(4.8e-5, abs=1e-9)
    assert numerics.rounding_margin(0.7725480, 2) == pytest.approx(0.002452, abs=1e-9)  # from 0.775
    assert numerics.rounding_margin(0.77, 2) == pytest.approx(0.005, abs=1e-9)
    assert numerics.rounding_margin(22712.4, 0) == pytest.approx(0.1, abs=1e-6)
