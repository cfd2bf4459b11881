"""Heads run side by side, once: no head feeds its output into the next head's query.

For one layer of SmolLM2 we record its attention in a single forward pass. The attention
function fires once for the layer (`trace.calls`), and that one call returns all 9 heads'
outputs together ([T, heads, d_head]). The layer's contribution to the residual stream is
rebuilt as concat(head_0 … head_8) @ W_Oᵀ with the stored o_proj weight. Putting the heads
(and the matching column blocks of W_O) in a different order, or adding up the heads'
contributions one at a time in reverse order, gives the same result up to float rounding: no
head waits for another, so there is no chain. Grouped-query attention is the only sharing:
query head h reads key/value head h // 3, yet heads sharing keys still attend differently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import altair as alt
import numpy as np
import pandas as pd
import torch

from kqv_demo import numerics
from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param, check_layer_head

SHUFFLE_SEED = 0
CHART_TOKENS = 32  # the chart shows at most this many positions (Altair's 5,000-row limit)


@dataclass(frozen=True)
class HeadsInParallel:
    truncation: str | None
    tokens: list[str]  # axis labels, one per position
    layer: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_model: int
    attention_calls: int  # how often layer `layer`'s attention ran in the forward pass
    layers_called_once: bool  # every layer's attention ran exactly once
    out_shape: tuple[int, ...]  # [T, heads, d_head]: all heads from that one call
    o_proj_shape: tuple[int, ...]  # W_O as stored: [d_model, heads × d_head]
    reconstruction_max_diff: float  # concat(heads) @ W_Oᵀ vs the model's attn_out
    orders: list[list[int]]  # the head orders tried (model order first)
    order_max_diffs: list[float]  # per order: max |result − model's result|
    one_by_one_max_diff: float  # Σ_h head_h @ W_O[:, block h]ᵀ, heads added in reverse order
    order_max_diff_float64: float  # the same reorderings in float64: how much is float32 rounding
    separate_heads_max_diff: float  # each head recomputed alone, in shuffled order, vs the one call
    separate_heads_tolerance: float  # the most float32 rounding can make two computations of a head's output differ
    result_max_abs: float  # max |attn_out|: the scale the rounding differences compare with
    rounding_tolerance: float  # the most float32 rounding can change concat(heads) @ W_Oᵀ, in any order of adding
    kv_head_of: list[int]  # which key/value head each query head reads
    sharing_pairs: list[tuple[int, int]]  # query-head pairs that read the same key/value head
    sharing_pattern_diffs: list[float]  # max |pattern_a − pattern_b| for each such pair
    patterns: np.ndarray  # [heads, T, T]

    @property
    def order_invariance(self) -> float:
        """The largest change from reordering the heads (float rounding only)."""
        return max(self.order_max_diffs[1:] + [self.one_by_one_max_diff])

    @property
    def relative_order_invariance(self) -> float:
        return self.order_invariance / self.result_max_abs if self.result_max_abs else 0.0


def _project(heads: torch.Tensor, w_o: torch.Tensor, order: list[int], d_head: int) -> torch.Tensor:
    """concat(heads in `order`) @ (W_O with its column blocks in the same order)ᵀ."""
    tokens = heads.shape[0]
    concat = heads[:, order].reshape(tokens, -1)
    columns = torch.cat([w_o[:, h * d_head:(h + 1) * d_head] for h in order], dim=1)
    return concat @ columns.T


def _one_head(trace, layer: int, head: int, group: int) -> torch.Tensor:
    """softmax(q Kᵀ/√d + causal mask) V for one query head, using nothing from any other head."""
    prefix = f"blocks.{layer}.attn."
    q = trace[prefix + "rot_q"][head]  # [T, d_head]
    k, v = trace[prefix + "rot_k"][head // group], trace[prefix + "v"][head // group]
    scores = q @ k.T / math.sqrt(q.shape[-1])
    if trace.model.causal:
        future = torch.triu(torch.ones_like(scores, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def compute(runtime, prompt: str, layer: int = 0) -> HeadsInParallel:
    check_layer_head(runtime.shape(), layer)
    prefix = f"blocks.{layer}.attn."
    trace = runtime.trace(prompt, names_filter=lambda name: name.startswith((prefix, f"blocks.{layer}.attn_out")))
    shape = trace.model
    d_head, n_heads = shape.d_head, shape.n_heads
    group = n_heads // shape.n_kv_heads
    heads = trace[prefix + "z"]  # [T, H, d_head], one call for all heads
    patterns = trace[prefix + "pattern"]  # [H, T, T]
    model_result = trace[f"blocks.{layer}.attn_out"]  # [T, d_model], after o_proj
    w_o = runtime.parameter(f"model.layers.{layer}.self_attn.o_proj.weight")

    model_order = list(range(n_heads))
    shuffled = [int(h) for h in np.random.default_rng(SHUFFLE_SEED).permutation(n_heads)]
    orders = [model_order, model_order[::-1], shuffled]
    diffs = [float((_project(heads, w_o, order, d_head) - model_result).abs().max()) for order in orders]
    one_by_one = torch.zeros_like(model_result)
    for h in reversed(model_order):
        one_by_one += heads[:, h] @ w_o[:, h * d_head:(h + 1) * d_head].T

    exact = [_project(heads.double(), w_o.double(), order, d_head) for order in orders]
    separate = torch.empty_like(heads)
    for h in shuffled:  # one head at a time, from that head's own q and its key/value head's K, V
        separate[:, h] = _one_head(trace, layer, h, group)

    kv_head_of = [h // group for h in model_order]
    pairs = [(a, b) for a, b in combinations(model_order, 2) if kv_head_of[a] == kv_head_of[b]]
    calls = trace.calls
    return HeadsInParallel(
        truncation=trace.notice,
        tokens=trace.token_labels(),
        layer=layer,
        n_heads=n_heads,
        n_kv_heads=shape.n_kv_heads,
        d_head=d_head,
        d_model=shape.d_model,
        attention_calls=calls.get(prefix + "pattern", 0),
        layers_called_once=all(calls.get(f"blocks.{i}.attn.pattern", 0) == 1 for i in range(shape.n_layers)),
        out_shape=tuple(heads.shape),
        o_proj_shape=tuple(w_o.shape),
        reconstruction_max_diff=diffs[0],
        orders=orders,
        order_max_diffs=diffs,
        one_by_one_max_diff=float((one_by_one - model_result).abs().max()),
        order_max_diff_float64=max(float((e - exact[0]).abs().max()) for e in exact),
        separate_heads_max_diff=float((separate - heads).abs().max()),
        separate_heads_tolerance=max(numerics.attention_output_noise(
            trace[prefix + "rot_q"][h], trace[prefix + "rot_k"][h // group], trace[prefix + "v"][h // group])
            for h in model_order),
        result_max_abs=float(model_result.abs().max()),
        rounding_tolerance=numerics.matmul_noise(heads.reshape(heads.shape[0], -1), w_o.T),
        kv_head_of=kv_head_of,
        sharing_pairs=pairs,
        sharing_pattern_diffs=[float((patterns[a] - patterns[b]).abs().max()) for a, b in pairs],
        patterns=patterns.numpy().copy(),
    )


def chart(result: HeadsInParallel) -> alt.FacetChart:
    """Small multiples: the 9 heads' attention patterns, all from the same single call."""
    shown = min(len(result.tokens), CHART_TOKENS)  # causal: the first positions form a complete square
    tokens = result.tokens[:shown]
    rows, cols = np.tril_indices(shown)  # only the cells the causal mask leaves visible
    frames = []
    for h in range(result.n_heads):
        frames.append(pd.DataFrame({
            "head": f"head {h} (reads K/V {result.kv_head_of[h]})",
            "query token": [tokens[i] for i in rows],
            "key token": [tokens[j] for j in cols],
            "weight": result.patterns[h][rows, cols],
        }))
    data = pd.concat(frames, ignore_index=True)
    order = list(dict.fromkeys(data["head"]))
    # Three panels side by side within ~800 px; a token label needs 14 px (thinned beyond 13 tokens).
    size = max(110, min(190, 15 * shown))
    axis = alt.Axis(labelOverlap=charts.label_overlap(size, shown, 14))
    return (
        alt.Chart(data)
        .mark_rect()
        .encode(
            x=alt.X("key token:N", sort=tokens, title="key (attended to)", axis=axis),  # short: 3 panels side by side
            y=alt.Y("query token:N", sort=tokens, title="query (attending)", axis=axis),
            color=alt.Color("weight:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1]), title="weight"),
            tooltip=["head", "query token", "key token", alt.Tooltip("weight:Q", format=".4f")],
        )
        .properties(width=size, height=size)
        .facet(facet=alt.Facet("head:N", sort=order, title=None), columns=result.n_kv_heads,
               title=f"Layer {result.layer}: all {result.n_heads} heads, computed side by side in one call"
               + (f" (first {shown} of {len(result.tokens)} tokens)" if shown < len(result.tokens) else ""))
    )


def explain(result: HeadsInParallel) -> str:
    low, high = min(result.sharing_pattern_diffs), max(result.sharing_pattern_diffs)
    alike = (
        "; two can still look alike when both put nearly all their weight on the first token"
        if low < 0.01 else ""
    )
    if len(result.tokens) == 1:
        alike = "; with a one-token prompt every head must put all its weight on that token"
    return (
        f"In layer {result.layer} the attention ran **{result.attention_calls} time** for the whole "
        f"prompt and returned all {result.n_heads} heads at once, each reading the same input. Each panel "
        "is one head's attention pattern (blank: later tokens, hidden by the causal mask). "
        "The heads' outputs are placed side by side and multiplied by "
        f"the output matrix W_O; this rebuilds the layer's result to {result.reconstruction_max_diff:.1e}. "
        "Putting the heads in another order, or adding them up one at a time backwards, changes the result "
        f"by at most {result.order_invariance:.1e}, rounding on values up to {result.result_max_abs:.1f}. "
        "So no head's output becomes the next head's query. The only sharing: query heads "
        f"{_groups(result)} read the same keys and values, yet their patterns differ (by {low:.2f} to "
        f"{high:.2f}{alike})."
    )


def _groups(result: HeadsInParallel) -> str:
    groups = [
        ", ".join(str(h) for h in range(result.n_heads) if result.kv_head_of[h] == g)
        for g in range(result.n_kv_heads)
    ]
    return " / ".join(groups)


def headline(result: HeadsInParallel) -> list[tuple[str, str]]:
    return [
        (f"Attention calls in layer {result.layer}", f"{result.attention_calls}"),
        ("Max |concat(heads)·W_Oᵀ − model|", f"{result.reconstruction_max_diff:.1e}"),
        ("Max change from reordering heads", f"{result.order_invariance:.1e}"),
        ("Pattern difference, shared K/V",
         f"{min(result.sharing_pattern_diffs):.2f}–{max(result.sharing_pattern_diffs):.2f}"),
    ]


def status(result: HeadsInParallel) -> tuple[bool, str]:
    # float32 rounding grows with the size of the terms added (values up to ~180 in layer 24): the bound is
    # derived from this run's magnitudes (kqv_demo.numerics), so it holds on every CPU.
    ok = (
        result.attention_calls == 1
        and result.reconstruction_max_diff <= result.rounding_tolerance
        and result.order_invariance <= result.rounding_tolerance
        and (min(result.sharing_pattern_diffs) > 0 or len(result.tokens) == 1)
    )
    if ok:
        return True, "One call computes every head; the order of the heads does not matter."
    return False, "The heads could not be rebuilt in parallel: please report this."


def details(result: HeadsInParallel) -> str:
    orders = "; ".join(" ".join(map(str, order)) for order in result.orders)
    diffs = ", ".join(f"{d:.1e}" for d in result.order_max_diffs)
    layer, last = result.layer, result.n_heads - 1
    return (
        "$$\\mathrm{MultiHead}(x) = \\mathrm{Concat}(\\mathrm{head}_0, \\dots, \\mathrm{head}_{"
        f"{last}"
        "})\\,W_O^\\top"
        " = \\sum_h \\mathrm{head}_h\\, W_{O,h}^\\top$$\n\n"
        f"Head orders tried: {orders}; max differences {diffs}; one at a time in reverse: "
        f"{result.one_by_one_max_diff:.1e} (in float64 every order agrees to "
        f"{result.order_max_diff_float64:.1e}, so the float32 differences are rounding). "
        "Each head recomputed on its own, in shuffled order, as softmax(qKᵀ/√d + mask)V matches the "
        f"single call to {result.separate_heads_max_diff:.1e}. "
        "Query head h reads key/value head h // "
        f"{result.n_heads // result.n_kv_heads}: {result.kv_head_of}.\n\n"
        "```python\n"
        f"heads = trace['blocks.{layer}.attn.z']   # {list(result.out_shape)} = [T, heads, d_head]\n"
        f"W_O = runtime.parameter('model.layers.{layer}.self_attn.o_proj.weight')"
        f"   # {list(result.o_proj_shape)}\n"
        "rebuilt = heads.reshape(T, -1) @ W_O.T\n"
        f"(rebuilt - trace['blocks.{layer}.attn_out']).abs().max()\n"
        f"trace.calls['blocks.{layer}.attn.pattern']   # {result.attention_calls}\n"
        "```"
    )


DEMO = Demo(
    id="heads-in-parallel",
    reads_sentence=True,
    title="Heads run side by side, once",
    summary=(
        "All heads of a layer read the same input and are computed together in one call; their outputs "
        "are concatenated and projected by W_O. Reordering the heads changes nothing but rounding, so no "
        "head passes a query to the next. Query heads share key/value heads (grouped-query attention) "
        "but still attend differently."
    ),
    default_prompt="The cat sat on the mat because it was tired.",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    params=(Param("layer", "layer", 0, "Layer"),),
)
