"""Raw attention scores are unbounded and often negative; softmax turns them into weights.

For one layer and query head of SmolLM2 we read the raw scores q·k/√d (`blocks.L.attn.scores_unmasked`,
before the mask) of every pair that the causal mask lets through, and the weights the model
made of them (`blocks.L.attn.pattern`). The scores are not probabilities: they run far below 0
and above 1, and their only limit is ‖q‖·‖k‖/√d. Softmax, exp(s_j) / Σ_k exp(s_k) per row,
makes every weight positive and each row sum to 1. Only differences within a row matter:
adding the same constant to every score of a row leaves its weights unchanged (up to float32
rounding), which we compute from the model's own scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
import torch

from kqv_demo import numerics
from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param, check_layer_head


@dataclass(frozen=True)
class RawScores:
    truncation: str | None
    tokens: list[str]  # axis labels, one per position
    layer: int
    head: int
    d_head: int
    scores: np.ndarray  # [T, T] q·k/√d as the model computed it; entries above the diagonal are masked
    weights: np.ndarray  # [T, T] the model's attention weights
    visible: int  # score entries the causal mask lets through: T(T+1)/2
    score_min: float  # over the visible entries of this head
    score_max: float
    share_negative: float  # of the visible entries
    layer_score_min: float  # over every head of the layer
    layer_score_max: float
    norm_limit: float  # max over visible pairs of ‖q‖·‖k‖/√d: the only limit on a score
    weight_min: float  # smallest visible weight (> 0 unless exp underflowed in float32)
    weight_max: float
    underflowed: int  # visible weights that are exactly 0: a score more than ~104 below its row's largest
    row_sum_error: float  # max |Σ_j w_ij − 1|
    row_sum_bound: float  # float32 bound on that error
    by_hand_max_diff: float  # max |softmax(masked scores) − model weights|
    by_hand_bound: float
    shift: float  # the constant added to every score of every row
    shift_max_diff: float  # max |softmax(scores + shift) − softmax(scores)|
    shift_bound: float  # float32 bound on that difference

    @property
    def weights_valid(self) -> bool:
        return (
            self.weight_max <= 1
            and (self.weight_min > 0 or self.underflowed > 0)
            and self.row_sum_error <= self.row_sum_bound
        )

    @property
    def shift_invariant(self) -> bool:
        return self.shift_max_diff <= self.shift_bound and self.by_hand_max_diff <= self.by_hand_bound


def shift_score_noise(max_abs_score: float, shift: float) -> float:
    """How far the rounded scores seen by the two softmaxes can be from an exact shift: s + c rounds by
    EPS/2·(|s| + |c|), and each softmax's own max-subtraction s_j − max_k s_k rounds by EPS/2 times the
    row's range (at most 2·max|s|) on each side."""
    return numerics.EPS / 2 * (max_abs_score + abs(shift)) + 2 * numerics.EPS * max_abs_score


def compute(runtime, prompt: str, layer: int, head: int, shift: float) -> RawScores:
    shape = runtime.shape()
    check_layer_head(shape, layer, head)
    prefix = f"blocks.{layer}.attn."
    wanted = {prefix + name for name in ("rot_q", "rot_k", "scores_unmasked", "pattern")}
    trace = runtime.trace(prompt, names_filter=lambda name: name in wanted)
    all_scores, pattern = trace[prefix + "scores_unmasked"], trace[prefix + "pattern"]
    scores, weights = all_scores[head], pattern[head]  # [T, T]
    n = trace.n_tokens
    visible = torch.ones(n, n, dtype=torch.bool).tril()  # the causal mask's allowed entries
    seen, seen_weights = scores[visible], weights[visible]
    masked = scores.masked_fill(~visible, float("-inf"))
    by_hand = torch.softmax(masked, dim=-1)
    shifted = torch.softmax(masked + shift, dim=-1)  # -inf + shift stays -inf: the mask is kept

    q = trace[prefix + "rot_q"][head]
    k = trace[prefix + "rot_k"][head // (shape.n_heads // shape.n_kv_heads)]
    limits = torch.outer(q.norm(dim=-1), k.norm(dim=-1))[visible] / math.sqrt(shape.d_head)
    max_abs = float(seen.abs().max())
    return RawScores(
        truncation=trace.notice,
        tokens=trace.token_labels(),
        layer=layer,
        head=head,
        d_head=shape.d_head,
        scores=scores.numpy().copy(),
        weights=weights.numpy().copy(),
        visible=int(visible.sum()),
        score_min=float(seen.min()),
        score_max=float(seen.max()),
        share_negative=float((seen < 0).double().mean()),
        layer_score_min=float(all_scores[:, visible].min()),
        layer_score_max=float(all_scores[:, visible].max()),
        norm_limit=float(limits.max()),
        weight_min=float(seen_weights.min()),
        weight_max=float(seen_weights.max()),
        underflowed=int((seen_weights == 0).sum()),
        row_sum_error=float((weights.sum(-1) - 1).abs().max()),
        row_sum_bound=numerics.sums_to_one_noise(n),
        by_hand_max_diff=float((by_hand - weights).abs().max()),
        by_hand_bound=numerics.attention_weights_noise(q, k),
        shift=shift,
        shift_max_diff=float((shifted - by_hand).abs().max()),
        shift_bound=numerics.softmax_noise(n, shift_score_noise(max_abs, shift)),
    )


def _score_map(result: RawScores, size: int) -> alt.LayerChart:
    """Raw scores on a diverging scale centred on 0 (blue below, orange above); masked entries grey."""
    scores, tokens, title = charts.shown_square(
        result.scores, result.tokens, f"Raw scores q·k/√d (layer {result.layer}, head {result.head})")
    rows, cols = np.indices(scores.shape)
    data = pd.DataFrame({
        "query token": [tokens[i] for i in rows.ravel()],
        "key token": [tokens[j] for j in cols.ravel()],
        "score": scores.ravel(),
        "masked": (cols > rows).ravel(),
    })
    base = alt.Chart(data, title=title).encode(
        x=alt.X("key token:N", sort=tokens, title="key (attended-to token)", axis=charts.token_axis(size, len(tokens))),
        y=alt.Y("query token:N", sort=tokens, title="query (attending token)",
                axis=charts.token_axis(size, len(tokens))),
        tooltip=["query token", "key token", alt.Tooltip("score:Q", format=".3f"), "masked"],
    )
    limit = max(abs(result.score_min), abs(result.score_max), 1e-9)
    scored = base.transform_filter("!datum.masked").mark_rect().encode(
        color=alt.Color("score:Q", title="score", scale=alt.Scale(scheme="blueorange", domain=[-limit, limit])),
    )
    masked = base.transform_filter("datum.masked").mark_rect(color=charts.MASKED_GREY)
    return (masked + scored).properties(width=size, height=size)


def chart(result: RawScores) -> alt.HConcatChart | alt.VConcatChart:
    """Raw scores and the softmax weights made of them, each on its own colour scale."""
    side = charts.pair_size(len(result.tokens), max(len(label) for label in result.tokens))
    size = side or charts.attention_map_size(len(result.tokens))
    weights = charts.attention_heatmap(result.weights, result.tokens, "After softmax: the weights", size)
    maps = (alt.hconcat if side else alt.vconcat)(_score_map(result, size), weights)
    # Legends above their maps: beside them, two maps and two legends would not fit the ~800 px column.
    return maps.resolve_scale(color="independent").properties(title=alt.TitleParams(
        "Grey: masked future tokens, left out of the scores and given weight exactly 0.",
        anchor="start", fontSize=12, fontWeight="normal", orient="bottom",
    )).configure_legend(orient="top", gradientLength=min(size, 200))


def _underflow(result: RawScores) -> str:
    if not result.underflowed:
        return f"every weight is above 0 (smallest {result.weight_min:.1e})"
    return (
        f"{result.underflowed} weights are exactly 0: their scores are so far below the row's largest that "
        "exp underflows in float32; the others are above 0"
    )


def explain(result: RawScores) -> str:
    return (
        f"In layer {result.layer}, head {result.head}, the raw scores q·k/√d of the {result.visible} pairs the mask "
        f"lets through run from **{result.score_min:.1f} to {result.score_max:.1f}**, and "
        f"**{result.share_negative:.0%}** of them are negative (all heads of this layer: "
        f"{result.layer_score_min:.1f} to {result.layer_score_max:.1f}). They are not probabilities and have no "
        f"fixed range: the only limit is ‖q‖·‖k‖/√d, up to {result.norm_limit:.1f} here. Softmax turns each row "
        f"into weights: {_underflow(result)}, none above 1 (largest {result.weight_max:.2f}), and each row sums to "
        f"1 (largest error {result.row_sum_error:.0e}). Only differences within a row count: adding "
        f"{result.shift:g} to every score of each row changes no weight by more than {result.shift_max_diff:.0e}, "
        f"float32 rounding (bound {result.shift_bound:.0e})."
    )


def headline(result: RawScores) -> list[tuple[str, str]]:
    return [
        ("Raw scores, min to max", f"{result.score_min:.1f} to {result.score_max:.1f}"),
        ("Negative scores", f"{result.share_negative:.0%}"),
        ("Weights, min to max", f"{result.weight_min:.0e} to {result.weight_max:.2f}"),
        (f"Max change, all scores {result.shift:+g}", f"{result.shift_max_diff:.0e}"),
    ]


def status(result: RawScores) -> tuple[bool, str]:
    if result.weights_valid and result.shift_invariant:
        return True, "Unbounded scores in, weights in (0, 1] summing to 1 out; a shift of a row changes nothing."
    return False, "The weights did not come out of softmax as described: please report this."


def details(result: RawScores) -> str:
    layer, head = result.layer, result.head
    return (
        "$$w_{ij} = \\frac{e^{s_{ij}}}{\\sum_{k \\le i} e^{s_{ik}}}, "
        "\\qquad s_{ij} = \\frac{q_i \\cdot k_j}{\\sqrt{d}}, "
        "\\qquad \\frac{e^{s_{ij} + c}}{\\sum_k e^{s_{ik} + c}} = \\frac{e^{c} e^{s_{ij}}}{e^{c} \\sum_k e^{s_{ik}}} "
        "= w_{ij}$$\n\n"
        "```python\n"
        f"trace = runtime.trace(prompt, names_filter=lambda n: n.startswith('blocks.{layer}.attn.'))\n"
        f"scores = trace['blocks.{layer}.attn.scores_unmasked'][{head}]   # before the mask\n"
        "masked = scores.masked_fill(~torch.ones_like(scores, dtype=bool).tril(), float('-inf'))\n"
        f"torch.softmax(masked, -1)    # = trace['blocks.{layer}.attn.pattern'][{head}] "
        f"(max diff {result.by_hand_max_diff:.0e})\n"
        f"torch.softmax(masked + {result.shift:g}, -1)   # the same weights (max diff {result.shift_max_diff:.0e})\n"
        "```\n\n"
        f"Float32 bounds: row sums within {result.row_sum_bound:.0e} of 1; the shifted softmax within "
        f"{result.shift_bound:.0e} (the shift's own rounding, EPS/2·(max|s| + |c|), plus each softmax's rounding)."
    )


DEMO = Demo(
    id="raw-scores",
    title="Raw scores are unbounded; softmax makes them weights",
    summary=(
        "Attention's raw scores q·k/√d are not probabilities: they are often negative and have no fixed range. "
        "Softmax turns each row into weights above 0 that sum to 1, and only differences within a row count: "
        "adding a constant to a row leaves its weights unchanged."
    ),
    default_prompt="The cat sat on the mat because it was tired.",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    params=(
        Param("layer", "layer", 11, "Layer"),
        Param("head", "head", 1, "Query head"),
        Param("shift", "float", 10.0, "Constant added to every score", low=-100.0, high=100.0),
    ),
)
