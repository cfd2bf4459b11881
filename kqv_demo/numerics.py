"""How far two float32 computations of the same number may differ, and deciding with a margin.

The same formula gives slightly different float32 results on different CPUs: torch picks its kernels
by the CPU's vector width (AVX-512, AVX2 or plain code), MKL picks its own, and each adds the terms of
a sum in its own order. A number that the app quotes or a decision that the app takes must therefore
not depend on the last bits. This module gives the bounds to compare against:

- `sum_noise` / `matmul_noise` / `softmax_noise` are derived bounds (worst case over every order of
  adding, Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed. 2002, §3.1 and §4.2): two
  kernels can never differ by more, whatever the CPU.
- `LOGIT_NOISE` and `STATE_NOISE` bound a whole forward pass (30 layers, too deep for a useful a-priori
  bound): measured on every CPU path with a wide margin, promised in the README, checked by the tests.
  `probability_noise` and friends carry LOGIT_NOISE over to what the app shows.
- `decide` turns a measured number into one of two outcomes only when it is clearly on one side of
  both bounds; in between it says so (`None`), and the caller chooses what a learner should be told.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import numpy as np
import torch

EPS = float(np.finfo(np.float32).eps)
"""float32's machine epsilon, 2**-23 = 1.19e-7: a sum's rounding adds at most this, relatively, per term."""

LOGIT_NOISE = 1e-3
"""Largest difference in SmolLM2's logits between two passes over the same tokens by different kernels
(another CPU, a packed or tree-masked pass, another sequence length). Measured on the four kernel sets of
`make test-cpu-paths` (torch AVX-512, AVX2 and plain; MKL's AMD and Intel paths): at most 1.2e-4 between two
CPUs for the same pass, 7e-5 between a packed or tree-masked pass and a plain one on one CPU. 1e-3 leaves a
factor of 8; tests/test_runtime.py checks it on every path."""

STATE_NOISE = 1e-4
"""Largest relative difference ‖Δh‖/‖h‖ in a hidden state of either model (any layer) between two passes by
different kernels; a cosine between two such states moves by at most 2·STATE_NOISE. Measured the same way:
at most 6.3e-6 between two CPUs, 5.9e-6 between a packed pass and a plain one (a factor of 16)."""

Outcome = TypeVar("Outcome")


def sum_noise(length: int, magnitude: float) -> float:
    """The most two float32 evaluations of one sum of `length` terms can differ, when the terms' absolute
    values add up to `magnitude`: each order of adding is within (length − 1)·u·magnitude of the exact sum
    (u = EPS / 2), so two orders are within (length − 1)·EPS·magnitude of each other. A product of two
    float32 numbers adds one more rounding per term, so `length` rather than length − 1."""
    return max(int(length), 1) * EPS * float(magnitude)


def matmul_noise(a: torch.Tensor, b: torch.Tensor) -> float:
    """The most two float32 evaluations of `a @ b` (any kernels, any CPU) can differ in any entry:
    `sum_noise` with the entry's own magnitude Σ_k |a_ik|·|b_kj|, the largest over all entries."""
    a, b = a.detach(), b.detach()  # a model's weight is a parameter: a bound needs no gradient
    magnitude = (a.double().abs() @ b.double().abs()).max() if a.numel() and b.numel() else 0.0
    return sum_noise(a.shape[-1], float(magnitude))


def softmax_noise(length: int, score_noise: float = 0.0) -> float:
    """The most two float32 softmaxes over `length` scores can differ in any weight, when their scores
    differ by at most `score_noise`: a weight p_j moves by p_j·(Δs_j − Σ p_k Δs_k), at most 2·score_noise·p_j;
    each side also rounds in exp, the sum of `length` terms and the division, (length + 3)·EPS·p_j. Both
    are relative to p_j ≤ 1, so the bound also holds for Σ_j |Δp_j|."""
    return 2 * float(score_noise) + 2 * (int(length) + 3) * EPS


def attention_weights_noise(q: torch.Tensor, k: torch.Tensor) -> float:
    """The most two float32 computations of softmax(q·kᵀ/√d) (+ a mask) can differ in any weight:
    the scores by `matmul_noise` / √d, then `softmax_noise` over the T keys. q: [queries, d], k: [T, d]."""
    return softmax_noise(k.shape[0], matmul_noise(q, k.T) / math.sqrt(q.shape[-1]))


def attention_output_noise(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> float:
    """The most two float32 computations of softmax(q·kᵀ/√d)·v can differ in any entry. Each weight moves
    by p_j·ε_j with |ε_j| ≤ `attention_weights_noise` (see `softmax_noise`: both terms are relative to p_j),
    so Σ_j |Δp_j|·|v_j| ≤ that bound × the largest |v| (Σ p_j = 1); plus the product's own rounding."""
    largest_value = float(v.abs().max()) if v.numel() else 0.0
    return attention_weights_noise(q, k) * largest_value + sum_noise(k.shape[0], largest_value)


def sums_to_one_noise(length: int) -> float:
    """How far the float32 sum of a float32 softmax's `length` weights can be from 1: the softmax's
    normaliser and the re-summation each round by up to (length − 1)·EPS/2 relatively, the reciprocal and
    the product once each (exp's own error cancels: the same rounded terms are summed and divided)."""
    return (int(length) + 2) * EPS


def cosine_noise(length: int) -> float:
    """The most a float32 cosine of two `length`-entry vectors can be off: the dot product by
    length·EPS (relative to ‖a‖·‖b‖), each norm by (length/2 + 1)·EPS, the division by EPS. So the cosine
    of a vector with itself can come out up to this far below 1."""
    return (2 * int(length) + 4) * EPS


def probability_noise(probability: Any, logit_noise: float = LOGIT_NOISE) -> Any:
    """How far a probability p read from SmolLM2's logits can move between CPUs when every logit moves by at
    most `logit_noise`: p' = p·e^Δs_j / Σ_k p_k·e^Δs_k, so logit(p') is within 2·logit_noise of logit(p)
    (exactly; about 2·logit_noise·p·(1 − p) for small noise). The same holds for the total probability of any
    set of tokens, and for an attention weight (or a mean of weights) compared between two passes: attention
    scores come from at most as deep in the model as the logits, and move no more. Takes a number or an
    array (one bound per entry); a probability of exactly 0 or 1 cannot move."""
    p = np.asarray(probability, dtype=np.float64)
    inside = (p > 0) & (p < 1)
    safe = np.where(inside, p, 0.5)
    logit, shift = np.log(safe / (1 - safe)), 2 * float(logit_noise)
    noise = np.where(inside, np.maximum(_sigmoid(logit + shift) - safe, safe - _sigmoid(logit - shift)), 0.0)
    return float(noise) if noise.ndim == 0 else noise


def weight_noise(weight: Any, length: int) -> Any:
    """How far a float32 attention weight (a softmax over `length` keys), or a mean of such weights, can move
    between two passes: its scores' share, `probability_noise`, plus the float32 softmax's own rounding,
    2·(length + 3)·EPS relative to the weight (which `probability_noise` leaves out: near 1, a weight moves
    by whole float32 steps of 6e-8 even when its scores hardly move)."""
    return probability_noise(weight) + softmax_noise(length) * np.asarray(weight, dtype=np.float64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def log_probability_noise(tokens: int = 1, logit_noise: float = LOGIT_NOISE) -> float:
    """How far log P of a continuation of `tokens` tokens can move between CPUs: each token's
    log-softmax Δs_j − Σ p_k Δs_k moves by at most 2·logit_noise. It also bounds a KL divergence
    between two such distributions that differ only by rounding: KL = Σ p·(log p − log q)."""
    return 2 * float(logit_noise) * max(int(tokens), 1)


def entropy_noise(nats: float, logit_noise: float = LOGIT_NOISE) -> float:
    """How far the entropy (in nats) of SmolLM2's next-token distribution can move between CPUs:
    ΔH = −Σ (1 + log p_j)·Δp_j with |Δp_j| ≤ 2·logit_noise·p_j, so |ΔH| ≤ 2·logit_noise·(1 + H)."""
    return 2 * float(logit_noise) * (1 + float(nats))


def decide(
    value: float, *, at_most: float, at_least: float, below: Outcome, above: Outcome
) -> Outcome | None:
    """`below` when `value` ≤ `at_most`, `above` when `value` ≥ `at_least`, and None in between, where
    the outcome could depend on the CPU (or something is wrong). `at_most` should be a noise bound and
    `at_least` far above it."""
    if not at_most < at_least:
        raise ValueError(f"the margin is empty: at_most {at_most!r} is not below at_least {at_least!r}")
    if value <= at_most:
        return below
    if value >= at_least:
        return above
    return None


def rounding_margin(value: float, decimals: int) -> float:
    """How far `value` is from the nearest point where rounding it to `decimals` places would change:
    a quoted figure is safe on every CPU only if this is larger than the value's noise."""
    unit = 10.0 ** -decimals
    scaled = float(value) / unit
    return float(abs(scaled - (math.floor(scaled) + 0.5)) * unit)


KEY_VALUE_NOISE = 1e-4
"""Largest relative difference max|Δ|/max|entry| in a key or a value of SmolLM2 (any layer, all positions)
between two passes by different kernels: generated one token at a time with a KV cache and recomputed in
one pass without it (kqv_demo/demos/kv_cache_contents.py), on each of the four kernel sets of
`make test-cpu-paths`, for 1 to 201 prompt tokens and 4 to 20 steps: at most 6.9e-6 (MKL's Intel path),
so 1e-4 leaves a factor of 14. A cache
kept in half precision could not pass: fp16 rounds each entry by up to 2**-11 of itself, which for the
largest entries is at least 2**-12 = 2.4e-4 of the largest one (bf16: 2**-9 = 2.0e-3)."""
