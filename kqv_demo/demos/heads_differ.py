"""Multi-head attention is not an ensemble of identical models: each head has its own W_Q and attends differently.

For one layer of SmolLM2 we record the 9 query heads' attention patterns on one prompt and
measure, for every pair of heads, the Jensen–Shannon divergence between their weights (in
bits: 0 for identical rows, 1 for rows with no key in common), averaged over the query rows
that have a choice (row 0 can only attend to itself). An ensemble of copies of one model
would give 0 for every pair. Each head also has its own learned block of W_Q: 64 rows of the
576 × 576 q_proj matrix, which give its 64-dim query. We compare the blocks by cosine and by
the overlap of the subspaces they read (1 = the same 64 directions; two random 64-dim
subspaces of 576 dims overlap 64/576 = 0.11 on average). Heads that share one key/value
head (grouped-query attention: 3 groups of 3) read the very same keys, yet attend
differently, because their queries differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import altair as alt
import numpy as np
import pandas as pd
import torch

from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param, check_layer_head

CHART_TOKENS = 24  # the small multiples show at most this many positions (9 panels within ~800 px)
# Two heads whose weights differed by float32 rounding alone (every weight within a relative 1e-3, far
# more than the ~1e-5 a softmax over 256 tokens can round) would be at most (1e-3)²/(8·ln 2) bits apart:
# JS(P, P + Δ) ≈ Σ Δ²/(8 p ln 2) to second order, and Σ (1e-3·p)²/p ≤ 1e-6.
JS_ROUNDING_BITS = 1e-6 / (8 * math.log(2))


@dataclass(frozen=True)
class HeadsDiffer:
    truncation: str | None
    tokens: list[str]  # axis labels, one per position
    layer: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_model: int
    kv_head_of: list[int]  # the key/value head each query head reads
    query_shape: tuple[int, ...]  # recorded queries [heads, T, d_head]: each head its own 64-dim query
    w_q_shape: tuple[int, ...]  # q_proj weight [heads × d_head, d_model]
    patterns: np.ndarray  # [heads, T, T]
    rows_compared: int  # query rows with more than one key to choose from
    js_bits: np.ndarray  # [heads, heads] mean Jensen–Shannon divergence over those rows, in bits
    w_q_cosine: np.ndarray  # [heads, heads] cosine between the heads' flattened W_Q blocks
    w_q_overlap: np.ndarray  # [heads, heads] subspace overlap ‖P_a P_b‖²_F / d_head, 1 on the diagonal

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return list(combinations(range(self.n_heads), 2))

    @property
    def sharing_pairs(self) -> list[tuple[int, int]]:
        return [(a, b) for a, b in self.pairs if self.kv_head_of[a] == self.kv_head_of[b]]

    def js_of(self, pairs: list[tuple[int, int]]) -> np.ndarray:
        return np.array([self.js_bits[a, b] for a, b in pairs])

    @property
    def chance_overlap(self) -> float:
        return self.d_head / self.d_model

    @property
    def all_heads_differ(self) -> bool:
        return self.rows_compared > 0 and float(self.js_of(self.pairs).min()) > JS_ROUNDING_BITS

    @property
    def w_q_blocks_differ(self) -> bool:
        off = ~np.eye(self.n_heads, dtype=bool)
        return float(self.w_q_cosine[off].max()) < 0.99 and float(self.w_q_overlap[off].max()) < 0.99


def js_divergence_bits(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen–Shannon divergence between the rows of p and q (last axis), in bits (0 to 1)."""
    m = (p + q) / 2

    def kl(a: torch.Tensor) -> torch.Tensor:
        return torch.where(a > 0, a * torch.log2(a / m), torch.zeros_like(a)).sum(-1)

    return (kl(p) + kl(q)) / 2


def subspace_overlap(blocks: torch.Tensor) -> torch.Tensor:
    """[heads, heads]: ‖P_a P_b‖²_F / d for the row spaces of the heads' W_Q blocks [heads, d, d_model],
    the mean squared cosine of their principal angles (1 = the same subspace)."""
    bases = torch.linalg.qr(blocks.transpose(1, 2)).Q  # [heads, d_model, d] orthonormal columns
    products = torch.einsum("adi,bdj->abij", bases, bases)
    return (products**2).sum((-1, -2)) / blocks.shape[1]


def compute(runtime, prompt: str, layer: int) -> HeadsDiffer:
    shape = runtime.shape()
    check_layer_head(shape, layer)
    prefix = f"blocks.{layer}.attn."
    trace = runtime.trace(prompt, names_filter=lambda name: name in (prefix + "pattern", prefix + "rot_q"))
    patterns = trace[prefix + "pattern"]  # [H, T, T]
    choosing = patterns[:, 1:].double()  # row 0 has one key only: every head gives it weight 1
    n_heads = shape.n_heads
    js = torch.zeros(n_heads, n_heads, dtype=torch.float64)
    if choosing.shape[1]:
        for a, b in combinations(range(n_heads), 2):
            js[a, b] = js[b, a] = js_divergence_bits(choosing[a], choosing[b]).mean()
    w_q = runtime.parameter(f"model.layers.{layer}.self_attn.q_proj.weight")
    blocks = w_q.double().reshape(n_heads, shape.d_head, shape.d_model)  # head h: rows h·d … (h+1)·d − 1
    flat = torch.nn.functional.normalize(blocks.reshape(n_heads, -1), dim=-1)
    group = n_heads // shape.n_kv_heads
    return HeadsDiffer(
        truncation=trace.notice,
        tokens=trace.token_labels(),
        layer=layer,
        n_heads=n_heads,
        n_kv_heads=shape.n_kv_heads,
        d_head=shape.d_head,
        d_model=shape.d_model,
        kv_head_of=[h // group for h in range(n_heads)],
        query_shape=tuple(trace[prefix + "rot_q"].shape),
        w_q_shape=tuple(w_q.shape),
        patterns=patterns.numpy().copy(),
        rows_compared=int(choosing.shape[1]),
        js_bits=js.numpy(),
        w_q_cosine=(flat @ flat.T).numpy(),
        w_q_overlap=subspace_overlap(blocks).numpy(),
    )


def _head_label(result: HeadsDiffer, head: int) -> str:
    return f"head {head} (K/V {result.kv_head_of[head]})"


def _patterns(result: HeadsDiffer) -> alt.FacetChart:
    shown = min(len(result.tokens), CHART_TOKENS)  # causal: the first positions form a complete square
    tokens = result.tokens[:shown]
    rows, cols = np.tril_indices(shown)
    data = pd.concat([
        pd.DataFrame({
            "head": _head_label(result, h),
            "query token": [tokens[i] for i in rows],
            "key token": [tokens[j] for j in cols],
            "weight": result.patterns[h][rows, cols],
        })
        for h in range(result.n_heads)
    ], ignore_index=True)
    size = max(110, min(190, 15 * shown))  # three panels in a row within ~800 px; 14 px per token label
    axis = alt.Axis(labelOverlap=charts.label_overlap(size, shown, 14))
    cut = f" (first {shown} of {len(result.tokens)} tokens)" if shown < len(result.tokens) else ""
    return (
        alt.Chart(data)
        .mark_rect()
        .encode(
            x=alt.X("key token:N", sort=tokens, title="key", axis=axis),
            y=alt.Y("query token:N", sort=tokens, title="query", axis=axis),
            color=alt.Color("weight:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1]), title="weight"),
            tooltip=["head", "query token", "key token", alt.Tooltip("weight:Q", format=".4f")],
        )
        .properties(width=size, height=size)
        .facet(facet=alt.Facet("head:N", sort=[_head_label(result, h) for h in range(result.n_heads)], title=None),
               columns=result.n_kv_heads,
               title=f"Layer {result.layer}: the {result.n_heads} heads' weights on the same prompt{cut}")
    )


def _matrix(result: HeadsDiffer, values: np.ndarray, field: str, title: str, scheme: str,
            domain: list[float]) -> alt.Chart:
    heads = [str(h) for h in range(result.n_heads)]
    data = pd.DataFrame([
        {"head A": heads[a], "head B": heads[b], field: float(values[a, b])}
        for a in range(result.n_heads) for b in range(result.n_heads)
    ])
    return (
        alt.Chart(data, title=title)
        .mark_rect()
        .encode(
            x=alt.X("head B:N", sort=heads, title="head", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("head A:N", sort=heads, title="head"),
            color=alt.Color(f"{field}:Q", scale=alt.Scale(scheme=scheme, domain=domain), title=field,
                            legend=alt.Legend(orient="bottom", gradientLength=150)),
            tooltip=["head A", "head B", alt.Tooltip(f"{field}:Q", format=".3f")],
        )
        .properties(width=200, height=200)
    )


def chart(result: HeadsDiffer) -> alt.VConcatChart:
    """The 9 patterns as small multiples; below, how far apart the heads' weights and their W_Q blocks are."""
    top = max(0.01, float(result.js_bits.max()))
    distances = alt.hconcat(
        _matrix(result, result.js_bits, "JS (bits)", "Distance between the heads' weights", "cividis",
                [0, top]),
        _matrix(result, result.w_q_overlap, "overlap", "Overlap of the heads' W_Q subspaces", "cividis", [0, 1]),
    ).resolve_scale(color="independent")
    return alt.vconcat(_patterns(result), distances)


def _range(values: np.ndarray, digits: int = 2) -> str:
    return f"{values.min():.{digits}f}–{values.max():.{digits}f}"


def explain(result: HeadsDiffer) -> str:
    off = ~np.eye(result.n_heads, dtype=bool)
    sharing = result.js_of(result.sharing_pairs)
    if result.rows_compared == 0:
        attends = "With a one-token prompt every head must put all its weight on that token: type a longer prompt. "
    else:
        attends = (
            f"On your prompt, the {len(result.pairs)} pairs of heads are {_range(result.js_of(result.pairs))} bits "
            f"apart (Jensen–Shannon divergence of their weights, mean over {result.rows_compared} query rows; "
            "copies of one model would be 0 apart). Heads that share a key/value head read the very same keys "
            f"and values, yet are {_range(sharing)} bits apart: their queries differ. "
        )
    return (
        f"Layer {result.layer} has {result.n_heads} query heads. {attends}"
        f"Each head has its own 64-row block of W_Q ({result.w_q_shape[0]}×{result.w_q_shape[1]} in all) and so its "
        f"own {result.d_head}-dim query: the blocks' cosines are {_range(result.w_q_cosine[off])}, and the "
        f"subspaces they read overlap {_range(result.w_q_overlap[off])} (1 = the same directions, "
        f"{result.chance_overlap:.2f} for random ones). Training gave the heads different jobs; "
        "they are not an ensemble of identical models."
    )


def headline(result: HeadsDiffer) -> list[tuple[str, str]]:
    off = ~np.eye(result.n_heads, dtype=bool)
    compared = result.rows_compared > 0
    return [
        ("Head pairs, JS of weights (bits)", _range(result.js_of(result.pairs), 3) if compared else "–"),
        ("Heads sharing K/V, JS (bits)", _range(result.js_of(result.sharing_pairs), 3) if compared else "–"),
        ("Cosine between W_Q blocks", _range(result.w_q_cosine[off])),
        (f"W_Q subspace overlap (chance {result.chance_overlap:.2f})", _range(result.w_q_overlap[off])),
    ]


def status(result: HeadsDiffer) -> tuple[bool, str]:
    if not result.w_q_blocks_differ:
        return False, "Two heads have the same W_Q block: please report this."
    if result.rows_compared == 0:
        return True, "Every head has its own W_Q; a one-token prompt leaves no choice to compare."
    if result.all_heads_differ:
        return True, "Every pair of heads attends differently, each with its own W_Q block."
    return False, "Two heads attended identically on this prompt: please report this."


def details(result: HeadsDiffer) -> str:
    layer, d = result.layer, result.d_head
    return (
        "$$\\mathrm{JS}(P, Q) = \\tfrac12 \\mathrm{KL}(P \\,\\|\\, M) + \\tfrac12 \\mathrm{KL}(Q \\,\\|\\, M), "
        "\\quad M = \\tfrac12 (P + Q), \\qquad "
        "\\mathrm{overlap}(a, b) = \\frac{\\lVert U_a^\\top U_b \\rVert_F^2}{d}$$\n\n"
        "P and Q are two heads' weights for the same query row (log base 2); $U_h$ is an orthonormal basis of "
        f"the row space of head h's W_Q block.\n\n"
        "```python\n"
        f"patterns = trace['blocks.{layer}.attn.pattern']   # [{result.n_heads}, T, T]\n"
        f"W_Q = runtime.parameter('model.layers.{layer}.self_attn.q_proj.weight')   # {list(result.w_q_shape)}\n"
        f"blocks = W_Q.reshape({result.n_heads}, {d}, {result.d_model})   # head h: rows {d}h … {d}h + {d - 1}\n"
        f"trace['blocks.{layer}.attn.rot_q'].shape   # {list(result.query_shape)}: one {d}-dim query per head\n"
        "```\n\n"
        f"Query head h reads key/value head h // {result.n_heads // result.n_kv_heads}: {result.kv_head_of}. "
        f"Identical heads would differ by float32 rounding only: less than {JS_ROUNDING_BITS:.0e} bits."
    )


DEMO = Demo(
    id="heads-differ",
    title="Heads differ: not an ensemble of identical models",
    summary=(
        "The heads of one layer read the same prompt but attend differently: each has its own learned block of "
        "W_Q and so its own query. Even heads that share keys and values (grouped-query attention) differ."
    ),
    default_prompt="The cat sat on the mat because it was tired.",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    params=(Param("layer", "layer", 10, "Layer"),),
)
