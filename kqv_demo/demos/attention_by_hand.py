"""Attention by hand: softmax(Q Kᵀ / sqrt(d_head) + mask) reproduces the model's weights.

For one layer and query head we take the model's own queries and keys (after
RoPE), compute the weights ourselves, and compare them with the pattern the
model's eager attention produced. Toggles drop the 1/sqrt(d) scaling or the
causal mask, to show that each one matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import altair as alt
import numpy as np
import torch

from kqv_demo import numerics
from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param, check_layer_head
from kqv_demo.trace import Trace


@dataclass(frozen=True)
class AttentionByHand:
    tokens: list[str]  # axis labels, one per position
    truncation: str | None
    layer: int
    head: int
    kv_head: int  # the key/value head this query head reads (grouped-query attention)
    heads_per_kv_head: int
    d_head: int
    causal: bool  # the model masks future tokens
    scaled: bool
    masked: bool
    model_weights: np.ndarray  # [T, T], from the model's forward pass
    hand_weights: np.ndarray  # [T, T], recomputed here
    max_abs_diff: float
    upper_triangle_max: float  # of the model's weights: exactly 0 in a causal model
    row_sum_max_error: float  # max |row sum - 1| of the model's weights
    tolerance: float  # the most float32 rounding can make two computations of these weights differ

    @property
    def matches(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def compute(runtime, prompt: str, layer: int, head: int, scaled: bool = True, masked: bool = True) -> AttentionByHand:
    """Trace `prompt` (recording only `layer`'s attention) and recompute one head by hand."""
    prefix = f"blocks.{layer}.attn."
    trace = runtime.trace(prompt, names_filter=lambda name: name.startswith(prefix))
    return from_trace(trace, layer, head, scaled=scaled, masked=masked)


def from_trace(trace: Trace, layer: int, head: int, *, scaled: bool = True, masked: bool = True) -> AttentionByHand:
    check_layer_head(trace.model, layer, head)
    shape = trace.model
    heads_per_kv_head = shape.n_heads // shape.n_kv_heads
    kv_head = head // heads_per_kv_head
    q = trace[f"blocks.{layer}.attn.{shape.attention_reads('q')}"][head]  # [T, d_head]
    k = trace[f"blocks.{layer}.attn.{shape.attention_reads('k')}"][kv_head]  # [T, d_head]
    scores = q @ k.T
    if scaled:
        scores = scores / math.sqrt(shape.d_head)
    if masked and shape.causal:
        future = torch.triu(torch.ones_like(scores, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
    hand = torch.softmax(scores, dim=-1)
    model = trace[f"blocks.{layer}.attn.pattern"][head]
    upper = torch.triu(model, diagonal=1)
    return AttentionByHand(
        tokens=trace.token_labels(),
        truncation=trace.notice,
        layer=layer,
        head=head,
        kv_head=kv_head,
        heads_per_kv_head=heads_per_kv_head,
        d_head=shape.d_head,
        causal=shape.causal,
        scaled=scaled,
        masked=masked,
        model_weights=model.numpy().copy(),
        hand_weights=hand.numpy().copy(),
        max_abs_diff=float((hand - model).abs().max()),
        upper_triangle_max=float(upper.abs().max()),
        row_sum_max_error=float((model.sum(-1) - 1).abs().max()),
        tolerance=numerics.attention_weights_noise(q, k),
    )


def chart(result: AttentionByHand) -> alt.HConcatChart | alt.VConcatChart:
    """The model's weights and the hand-computed ones, on one colour scale; grey cells are exactly 0."""
    hand_title = "By hand: softmax(QKᵀ" + ("/√d" if result.scaled else "") + (" + mask)" if result.masked else ")")
    size = charts.attention_map_size(len(result.tokens))
    return charts.attention_pair(
        charts.attention_heatmap(result.model_weights, result.tokens, f"Model, layer {result.layer} head {result.head}",
                                 size),
        charts.attention_heatmap(result.hand_weights, result.tokens, hand_title, size),
        size,
    ).properties(title=alt.TitleParams("Grey cells: weight exactly 0 (masked future tokens)", anchor="start",
                                        fontSize=12, fontWeight="normal", orient="bottom"))


def _triangle(result: AttentionByHand) -> str:
    if result.causal:
        return (
            f"Everything above the diagonal is exactly {result.upper_triangle_max:g}: "
            "a token never reads the tokens after it (causal mask)."
        )
    return "This encoder has no causal mask: every token also reads the tokens after it."


def _sharing(result: AttentionByHand) -> str:
    if result.heads_per_kv_head == 1:
        return f"Query head {result.head} has its own keys and values."
    return (
        f"Query head {result.head} reads key/value head {result.kv_head}, which it shares with "
        f"{result.heads_per_kv_head - 1} other query heads (grouped-query attention)."
    )


def explanation(result: AttentionByHand) -> str:
    """What you are seeing, in words, for the numbers of this run."""
    verdict = (
        f"They match: the largest difference is {result.max_abs_diff:.1e}."
        if result.matches
        else f"They do **not** match: the largest difference is {result.max_abs_diff:.3f}."
    )
    notes = []
    if not result.scaled:
        notes.append(
            f"Without the 1/√d scaling the scores are √{result.d_head} = {math.sqrt(result.d_head):g} times "
            "too large and the softmax gets too peaked."
        )
    if not result.masked:
        notes.append("Without the causal mask every token would also read the tokens after it.")
    return " ".join(
        [
            f"Each row is one query token; its {len(result.tokens)} weights over the key tokens sum to 1 "
            f"(largest error {result.row_sum_max_error:.1e}).",
            _triangle(result),
            _sharing(result),
            verdict,
            *notes,
            "No KL divergence, no lookup table: a dot product, a scale, a mask and a softmax.",
        ]
    )


def headline(result: AttentionByHand) -> list[tuple[str, str]]:
    return [
        ("Max |by hand − model|", f"{result.max_abs_diff:.1e}"),
        ("Largest weight above the diagonal", f"{result.upper_triangle_max:g}"),
        ("Largest |row sum − 1|", f"{result.row_sum_max_error:.1e}"),
    ]


def status(result: AttentionByHand) -> tuple[bool, str]:
    if result.matches:
        return True, "The hand computation reproduces the model's attention weights."
    return False, "With this setting the hand computation no longer matches the model."


def details(result: AttentionByHand) -> str:
    return (
        "$$a_{ij} = \\frac{\\exp(s_{ij})}{\\sum_{j'} \\exp(s_{ij'})},\\qquad "
        "s_{ij} = \\frac{q_i \\cdot k_j}{\\sqrt{d}} + m_{ij},\\qquad "
        "m_{ij} = \\begin{cases} 0 & j \\le i \\\\ -\\infty & j > i \\end{cases}$$\n\n"
        "```python\n"
        f"q = trace['blocks.{result.layer}.attn.rot_q'][{result.head}]   # [T, {result.d_head}] queries, after RoPE\n"
        f"k = trace['blocks.{result.layer}.attn.rot_k'][{result.kv_head}]   "
        f"# [T, {result.d_head}] keys of key/value head {result.kv_head}\n"
        f"scores = q @ k.T / {result.d_head}**0.5\n"
        "scores[future] = -inf                  # causal mask\n"
        f"weights = scores.softmax(-1)          # compare: trace['blocks.{result.layer}.attn.pattern'][{result.head}]\n"
        "```"
    )


DEMO = Demo(
    id="attention-by-hand",
    reads_sentence=True,
    title="Attention by hand",
    summary=(
        "Recompute one head's attention weights as softmax(QKᵀ/√d + causal mask) from the "
        "model's own queries and keys, and compare them with the weights the model used."
    ),
    default_prompt="The cat sat on the mat because it was tired.",
    compute=compute,
    chart=chart,
    explain=explanation,
    headline=headline,
    status=status,
    details=details,
    params=(
        Param("layer", "layer", 0, "Layer"),
        Param("head", "head", 0, "Query head"),
        Param("scaled", "bool", True, "Divide by √d"),
        Param("masked", "bool", True, "Causal mask"),
    ),
)
