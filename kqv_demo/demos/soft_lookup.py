"""A soft lookup, not a database: attention blends every value; a dict returns one or fails.

A Python dict is a hard lookup: an exactly equal key returns its one stored value, and any
other key raises KeyError. Attention has no equality test. For one head of SmolLM2, the last
token's query is scored against the key of *every* token in the context; the softmax gives each
of them a weight > 0, the weights sum to 1, and the output is a weighted mix of all the value
vectors. Multiplying the scores by a sharpness β shows how far this is from a lookup: only as
β grows does softmax(β·s) approach a one-hot choice, and the mix approach the single value
vector with the highest score. The model itself uses β = 1 (we check that softmax of its own
scores, with the causal mask, reproduces its weights).

Supports: the slides describe attention, not NoSQL databases (slides-are-about-nosql-databases,
llms-do-not-use-database-style-kqv, nosql-means-non-sql-compliant); attention has no O(1) key
lookup, it scores every key (nosql-keys-immutable-and-o1-lookup); it always returns one aggregate,
a weighted average of all values (nosql-queries-never-aggregate); and no "best-matching keys get
activated" while the others are ignored (best-matching-keys-get-activated).
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
from kqv_demo.markup import literal, literal_code
from kqv_demo.demos.confidence import nucleus
from kqv_demo.errors import UserInputError
from kqv_demo.trace import token_display

BETAS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0)
MASS = 0.9  # "how many tokens hold 90% of the weight"


@dataclass(frozen=True)
class Blend:
    """softmax(β·s) over the visible keys, and the output mix Σ_j w_j v_j."""

    weights: torch.Tensor  # [T]
    output: torch.Tensor  # [d_head]

    @property
    def max_weight(self) -> float:
        return float(self.weights.max())

    @property
    def entropy_bits(self) -> float:
        p = self.weights.double()
        return max(0.0, float(-(p * torch.log2(p.clamp_min(1e-300))).sum()))  # no "-0.00" for a one-hot row

    @property
    def tokens_for_mass(self) -> int:
        return nucleus(self.weights, MASS)[0]


def blend(scores: torch.Tensor, values: torch.Tensor, beta: float) -> Blend:
    """Attention of one query with its scores multiplied by β (β = 1 is what the model does)."""
    weights = torch.softmax(beta * scores.double(), dim=-1)
    return Blend(weights, weights @ values.double())


def dict_lookup(tokens: list[str], hit: str) -> tuple[dict[str, int], str, int, str, str]:
    """A real dict {token: position}: one exact hit, and a near-miss key that raises KeyError."""
    store = {token: position for position, token in enumerate(tokens)}
    value = store[hit]
    for miss in (hit.strip(), hit.strip().upper(), hit.strip() + "s", hit + "?"):
        if miss and miss not in store:
            break
    try:
        store[miss]
        error = ""
    except KeyError as exc:
        error = f"KeyError: {exc}"
    return store, hit, value, miss, error


@dataclass(frozen=True)
class SoftLookup:
    truncation: str | None
    tokens: list[str]  # axis labels, one per position
    layer: int
    head: int
    kv_head: int
    query_token: str  # the last token, whose attention row is shown
    n_heads: int
    n_kv_heads: int
    d_head: int
    q_shape: tuple[int, ...]  # blocks.L.attn.rot_q: [heads, T, d_head], one query per token per head
    k_shape: tuple[int, ...]  # [kv_heads, T, d_head]
    v_shape: tuple[int, ...]
    scores: np.ndarray  # [T] q·k/√d of the last token against every key
    model_weights: np.ndarray  # [T] the model's own attention row
    recompute_max_diff: float  # softmax(scores + causal mask) vs the model's pattern, whole [T, T] matrix
    output_max_diff: float  # Σ w_j v_j (β = 1) vs the head's output recorded in the model
    min_weight: float
    weight_sum: float
    entropy_bits: float
    uniform_entropy_bits: float  # log2 T: every token weighted equally
    tokens_for_90: int
    top_index: int  # the key with the highest score
    top_token: str
    top_value_norm: float
    distance_at_1: float  # ‖Σ w_j v_j − v_top‖ at β = 1
    sharpness: float
    sharp_weights: np.ndarray  # [T] softmax(sharpness · scores)
    sharp_max_weight: float
    sharp_entropy_bits: float
    sharp_tokens_for_90: int
    sharp_distance: float
    betas: np.ndarray  # the sweep
    sweep_max_weight: np.ndarray
    sweep_entropy_bits: np.ndarray
    sweep_tokens_for_90: np.ndarray
    sweep_distance: np.ndarray
    dict_size: int  # distinct keys in the dict {token: position}
    dict_hit_key: str
    dict_hit_value: int
    dict_miss_key: str
    dict_miss_error: str  # the KeyError a near-miss key raises

    @property
    def matches_model(self) -> bool:
        # the model's float32 softmax of its own scores vs ours in float64: one softmax's rounding
        return self.recompute_max_diff <= numerics.softmax_noise(len(self.tokens))


def compute(runtime, prompt: str, layer: int, head: int, sharpness: float = 1.0) -> SoftLookup:
    prefix = f"blocks.{layer}.attn."
    trace = runtime.trace(prompt, names_filter=lambda name: name.startswith(prefix))
    check_layer_head(trace.model, layer, head)
    if trace.n_tokens < 2:
        raise UserInputError("Type at least two tokens: with one token there is only one key to attend to.")
    shape = trace.model
    kv_head = head // (shape.n_heads // shape.n_kv_heads)
    all_scores = trace[prefix + "scores_unmasked"][head].double()  # [T, T], before the mask
    future = torch.triu(torch.ones_like(all_scores, dtype=torch.bool), diagonal=1)
    recomputed = torch.softmax(all_scores.masked_fill(future, float("-inf")), dim=-1)
    pattern = trace[prefix + "pattern"][head]
    scores = all_scores[-1]  # the last token sees every position, so its row needs no mask
    values = trace[prefix + "v"][kv_head]  # [T, d_head]
    model_row = pattern[-1]
    top = int(scores.argmax())
    top_value = values[top].double()
    own = blend(scores, values, 1.0)
    sharp = blend(scores, values, sharpness)
    sweep = [blend(scores, values, beta) for beta in BETAS]
    distance = lambda b: float((b.output - top_value).norm())  # noqa: E731
    _, hit, hit_value, miss, error = dict_lookup(trace.tokens, trace.tokens[top])
    n = trace.n_tokens
    return SoftLookup(
        truncation=trace.notice,
        tokens=trace.token_labels(),
        layer=layer,
        head=head,
        kv_head=kv_head,
        query_token=trace.tokens[-1],
        n_heads=shape.n_heads,
        n_kv_heads=shape.n_kv_heads,
        d_head=shape.d_head,
        q_shape=tuple(trace[prefix + "rot_q"].shape),
        k_shape=tuple(trace[prefix + "rot_k"].shape),
        v_shape=tuple(trace[prefix + "v"].shape),
        scores=scores.numpy().copy(),
        model_weights=model_row.numpy().copy(),
        recompute_max_diff=float((recomputed - pattern.double()).abs().max()),
        output_max_diff=float((own.output - trace[prefix + "z"][-1, head].double()).abs().max()),
        min_weight=float(model_row.min()),
        weight_sum=float(model_row.double().sum()),
        entropy_bits=Blend(model_row, own.output).entropy_bits,
        uniform_entropy_bits=math.log2(n),
        tokens_for_90=nucleus(model_row, MASS)[0],
        top_index=top,
        top_token=trace.tokens[top],
        top_value_norm=float(top_value.norm()),
        distance_at_1=distance(own),
        sharpness=sharpness,
        sharp_weights=sharp.weights.numpy().copy(),
        sharp_max_weight=sharp.max_weight,
        sharp_entropy_bits=sharp.entropy_bits,
        sharp_tokens_for_90=sharp.tokens_for_mass,
        sharp_distance=distance(sharp),
        betas=np.array(BETAS),
        sweep_max_weight=np.array([b.max_weight for b in sweep]),
        sweep_entropy_bits=np.array([b.entropy_bits for b in sweep]),
        sweep_tokens_for_90=np.array([b.tokens_for_mass for b in sweep]),
        sweep_distance=np.array([distance(b) for b in sweep]),
        dict_size=len(set(trace.tokens)),
        dict_hit_key=hit,
        dict_hit_value=hit_value,
        dict_miss_key=miss,
        dict_miss_error=error,
    )


def chart(result: SoftLookup):
    rows = [
        {"β (sharpness)": float(beta), "value": float(value), "measure": measure}
        for measure, values in (
            ("largest weight", result.sweep_max_weight),
            ("entropy (bits)", result.sweep_entropy_bits),
        )
        for beta, value in zip(result.betas, values)
    ]
    data = pd.DataFrame(rows)
    chosen = {"largest weight": result.sharp_max_weight, "entropy (bits)": result.sharp_entropy_bits}
    own = result.sharpness == 1  # the chosen β is the model's own: one series, not two identical ones
    subtitle = ("dashed and ringed: β = 1, the model's own" if own
                else f"dashed: the model (β = 1); ringed: β = {result.sharpness:g}")
    # labelFlush=False: the app's theme nudges end labels inward ("1.0" below its gridline, "0.0" above).
    x = alt.X("β (sharpness):Q", scale=alt.Scale(type="log", base=2), title="β: scores multiplied by (log scale)",
              axis=alt.Axis(labelFlush=False))
    panels = []
    for index, (measure, title) in enumerate((
        ("largest weight", "Largest weight → 1 (a one-hot lookup)"),
        ("entropy (bits)", "Entropy → 0 bits (all weight on one key)"),
    )):
        colour = charts.OKABE_ITO[index]
        line = (
            alt.Chart(data[data["measure"] == measure], title=alt.TitleParams(title, subtitle=subtitle))
            .mark_line(point=alt.OverlayMarkDef(color=colour), color=colour)
            .encode(x=x, y=alt.Y("value:Q", title=measure, axis=alt.Axis(labelFlush=False)),
                    tooltip=["β (sharpness)", alt.Tooltip("value:Q", format=".4f")])
        )
        model = alt.Chart(pd.DataFrame({"β": [1.0]})).mark_rule(strokeDash=[4, 4], color="#000000").encode(x="β:Q")
        ring = (
            alt.Chart(pd.DataFrame({"β (sharpness)": [result.sharpness], "value": [chosen[measure]]}))
            .mark_point(size=220, strokeWidth=2, color=charts.OKABE_ITO[3])
            .encode(x="β (sharpness):Q", y="value:Q")
        )
        panels.append((line + model + ring).properties(width=270, height=200))
    series = [("β = 1 (the model)", result.model_weights)]
    if not own:
        series.append((f"β = {result.sharpness:g}", result.sharp_weights))
    weight_rows = []
    for name, weights in series:
        weight_rows += [{"key token": t, "weight": float(w), "softmax of": name}
                        for t, w in zip(result.tokens, weights)]
    bars = charts.grouped_bars(
        pd.DataFrame(weight_rows), "key token", "weight", "softmax of",
        f"Weights of the last token “{token_display(result.query_token)}” over all keys "
        f"(layer {result.layer}, head {result.head})",
        x_order=result.tokens, y_title="attention weight", width=580,
    )
    return alt.vconcat(alt.hconcat(*panels), bars).resolve_scale(color="independent")


def _weight(value: float) -> str:
    return "more than 0.9999" if value > 0.9999 else f"{value:.4f}"


def _distance(value: float) -> str:
    return f"{value:.1e}" if value < 1e-3 else f"{value:.3f}"


def explain(result: SoftLookup) -> str:
    n = len(result.tokens)
    last = len(result.betas) - 1
    yours = (
        f" At your β = {result.sharpness:g} the largest weight is {result.sharp_max_weight:.3f}."
        if result.sharpness != 1 else ""
    )
    return (
        f"A Python dict is a hard lookup: {literal_code(f'store[{result.dict_hit_key!r}]')} returns exactly one value "
        f"(position {result.dict_hit_value}), and the near-miss key {literal(repr(result.dict_miss_key))} "
        "raises KeyError. "
        f"Attention has no exact match. In layer {result.layer}, head {result.head}, the last token "
        f"“{literal(result.query_token.strip())}” scores all {n} keys; every one gets a positive weight (smallest "
        f"{result.min_weight:.3f}), the weights sum to {result.weight_sum:.6f}, and the output blends all {n} value "
        f"vectors. The entropy is {result.entropy_bits:.2f} bits ({result.uniform_entropy_bits:.2f} would be uniform) "
        f"and {result.tokens_for_90} token{'s hold' if result.tokens_for_90 != 1 else ' holds'} 90% of the weight. "
        "Multiply the scores by β and the softmax "
        f"sharpens: at β = {result.betas[last]:g} the top key “{literal(result.top_token.strip())}” gets "
        f"{_weight(result.sweep_max_weight[last])} and the output is {_distance(result.sweep_distance[last])} from "
        f"its value vector ({result.distance_at_1:.2f} at β = 1).{yours} "
        "The model uses β = 1: a soft blend, not a lookup."
    )


def headline(result: SoftLookup) -> list[tuple[str, str]]:
    return [
        ("Keys with weight > 0", f"{int((result.model_weights > 0).sum())} of {len(result.tokens)}"),
        ("Tokens holding 90% (β = 1)", f"{result.tokens_for_90}"),
        (f"Largest weight at β = {result.sharpness:g}", f"{result.sharp_max_weight:.3f}"),
        ("‖mix − top value‖ at β = 1", f"{result.distance_at_1:.2f}"),
    ]


def status(result: SoftLookup) -> tuple[bool, str]:
    if result.matches_model and result.min_weight > 0:
        return True, "softmax of the model's scores reproduces its weights, and every key gets some weight."
    return False, "The recomputed weights do not match the model's: please report this."


def details(result: SoftLookup) -> str:
    rows = "\n".join(
        f"| {beta:g} | {mw:.4f} | {h:.3f} | {k} | {d:.4f} |"
        for beta, mw, h, k, d in zip(
            result.betas, result.sweep_max_weight, result.sweep_entropy_bits, result.sweep_tokens_for_90,
            result.sweep_distance,
        )
    )
    return (
        "$$w_j(\\beta) = \\frac{\\exp(\\beta s_j)}{\\sum_{j'} \\exp(\\beta s_{j'})},\\quad "
        "s_j = \\frac{q \\cdot k_j}{\\sqrt{d}},\\quad \\text{output} = \\sum_j w_j v_j$$\n\n"
        f"At β = 1 softmax of the model's scores (with the causal mask) matches its weights to "
        f"{result.recompute_max_diff:.1e}, and Σ w_j v_j matches the head's output to {result.output_max_diff:.1e}. "
        f"This layer holds one query per token per head ({'×'.join(map(str, result.q_shape))}) but keys and values "
        f"only per key/value head ({'×'.join(map(str, result.k_shape))}): computed from this prompt, not stored.\n\n"
        "| β | largest weight | entropy (bits) | tokens for 90% | "
        f"‖mix − v of “{literal(result.top_token.strip())}”‖ |\n"
        f"|---|---|---|---|---|\n{rows}\n\n"
        "When two keys score almost the same, even a large β splits the weight between them: "
        "a softmax never *chooses* by itself."
    )


DEMO = Demo(
    id="soft-lookup",
    reads_sentence=True,
    title="A soft lookup, not a database",
    summary=(
        "A dict returns the one value of an exactly matching key, or fails. Attention scores every key, "
        "gives each a positive weight and returns a weighted mix of all the values. Only if the scores were "
        "multiplied by a large factor would softmax approach a one-hot, database-style lookup."
    ),
    default_prompt="The cat sat on the mat because it was tired.",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    params=(
        Param("layer", "layer", 3, "Layer"),
        Param("head", "head", 8, "Query head"),
        Param("sharpness", "float", 1.0, "Sharpness β (scores × β)", low=0.25, high=16.0,
              help="β = 1 is the model's own attention; larger β makes the softmax closer to a hard lookup."),
    ),
)
