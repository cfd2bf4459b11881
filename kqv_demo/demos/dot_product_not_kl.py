"""Dot product, not KL: attention scores a query against keys with q·k/√d, then a softmax.

Real queries and keys are not probability distributions (negative entries, sums far
from 1), so KL(q‖k) is not even defined. Forcing them into distributions (softmax each)
and ranking keys by KL gives weights that do not match the model's. The dialogue's own
worked KL example is also recomputed: D(Q‖K) = 0.0946 nats, not 0.135.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from kqv_demo import numerics
from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param
from kqv_demo.trace import token_display

DIALOGUE_Q = (0.3, 0.5, 0.2)
DIALOGUE_K = (0.2, 0.4, 0.4)


@dataclass(frozen=True)
class WorkedExample:
    """The dialogue's example (Q = [0.3, 0.5, 0.2], K = [0.2, 0.4, 0.4]) done right."""

    kl_nats: float
    kl_bits: float
    reverse_kl_nats: float
    ln_1_25: float
    dialogue_ln_1_25: float
    dialogue_terms_sum: float  # what the dialogue's own rounded terms add up to
    dialogue_result: float
    plain_average_of_logs: float  # the "average" L197 describes, unweighted
    dot_product: float  # what attention would actually score (before scaling and softmax)


def worked_example() -> WorkedExample:
    q, k = np.array(DIALOGUE_Q), np.array(DIALOGUE_K)
    logs = np.log(q / k)
    dialogue_logs = np.array([0.405, 0.221, -0.693])
    return WorkedExample(
        kl_nats=float((q * logs).sum()),
        kl_bits=float((q * np.log2(q / k)).sum()),
        reverse_kl_nats=float((k * np.log(k / q)).sum()),
        ln_1_25=math.log(1.25),
        dialogue_ln_1_25=0.221,
        dialogue_terms_sum=float((q * dialogue_logs).sum()),
        dialogue_result=0.135,
        plain_average_of_logs=float(logs.mean()),
        dot_product=float(q @ k),
    )


@dataclass(frozen=True)
class DotProductNotKL:
    truncation: str | None
    layer: int
    head: int
    query_token: str  # the last token's text (not its axis label "11 ·.", which reads as a token "11 .")
    key_tokens: list[str]
    query_min: float
    query_sum: float
    query_negative_fraction: float
    keys_min: float
    keys_negative_fraction: float
    model_weights: np.ndarray  # [T] the model's attention row for the last token
    dot_product_weights: np.ndarray  # softmax(q·K/√d) computed here
    kl_weights: np.ndarray  # softmax(−KL(softmax q ‖ softmax k_j)): the best a KL reading could do
    dot_product_max_diff: float
    dot_product_tolerance: float  # the most float32 rounding can make two computations of these weights differ
    kl_max_diff: float
    kl_top_key_matches: bool  # does the KL reading pick the same most-attended key?
    example: WorkedExample


def compute(runtime, prompt: str, layer: int, head: int) -> DotProductNotKL:
    prefix = f"blocks.{layer}.attn."
    trace = runtime.trace(prompt, names_filter=lambda name: name.startswith(prefix))
    shape = trace.model
    kv_head = head // (shape.n_heads // shape.n_kv_heads)
    q = trace[prefix + "rot_q"][head, -1]  # the last token's query, [d_head]
    keys = trace[prefix + "rot_k"][kv_head]  # [T, d_head]
    model_row = trace[prefix + "pattern"][head, -1]
    dot_row = torch.softmax(keys @ q / math.sqrt(shape.d_head), dim=-1)
    p = torch.softmax(q, dim=-1)
    log_p = torch.log_softmax(q, dim=-1)
    log_k = torch.log_softmax(keys, dim=-1)
    kl = (p * (log_p - log_k)).sum(-1)  # KL(softmax q ‖ softmax k_j) for every key j
    kl_row = torch.softmax(-kl, dim=-1)
    labels = trace.token_labels()
    return DotProductNotKL(
        truncation=trace.notice,
        layer=layer,
        head=head,
        query_token=trace.tokens[-1],
        key_tokens=labels,
        query_min=float(q.min()),
        query_sum=float(q.sum()),
        query_negative_fraction=float((q < 0).float().mean()),
        keys_min=float(keys.min()),
        keys_negative_fraction=float((keys < 0).float().mean()),
        model_weights=model_row.numpy().copy(),
        dot_product_weights=dot_row.numpy().copy(),
        kl_weights=kl_row.numpy().copy(),
        dot_product_max_diff=float((dot_row - model_row).abs().max()),
        dot_product_tolerance=numerics.attention_weights_noise(q[None], keys),
        kl_max_diff=float((kl_row - model_row).abs().max()),
        kl_top_key_matches=int(kl_row.argmax()) == int(model_row.argmax()),
        example=worked_example(),
    )


def chart(result: DotProductNotKL):
    rows = []
    for name, weights in (
        ("model's weights", result.model_weights),
        ("softmax(q·k/√d)", result.dot_product_weights),
        ("ranking by KL", result.kl_weights),
    ):
        rows += [{"key token": token, "weight": float(w), "computed as": name}
                 for token, w in zip(result.key_tokens, weights)]
    return charts.grouped_bars(
        pd.DataFrame(rows), "key token", "weight", "computed as",
        f"Attention of the last token “{token_display(result.query_token)}” (position {len(result.key_tokens) - 1}) "
        f"over the context (layer {result.layer}, head {result.head})",
        x_order=result.key_tokens, y_title="attention weight",
    )


def explain(result: DotProductNotKL) -> str:
    ex = result.example
    return (
        f"The query of the last token has entries from {result.query_min:.2f} upwards; "
        f"{result.query_negative_fraction:.0%} of them are negative and they sum to {result.query_sum:.2f}, "
        f"not 1. The keys are {result.keys_negative_fraction:.0%} negative. These are not probability "
        "distributions, so KL divergence between them is not defined (it would need logarithms of "
        "negative numbers). The model's weights are exactly softmax(q·k/√d) "
        f"(largest difference {result.dot_product_max_diff:.1e}). Even after forcing q and each k into "
        f"distributions and ranking keys by KL, the weights are off by up to {result.kl_max_diff:.2f}"
        + ("." if result.kl_top_key_matches else ", and the KL ranking picks a different most-attended token.")
        + "\n\n**The dialogue's worked example, done right.** For Q = [0.3, 0.5, 0.2] and "
        f"K = [0.2, 0.4, 0.4]: ln 1.25 = {ex.ln_1_25:.4f} (the dialogue says {ex.dialogue_ln_1_25}); "
        f"D(Q‖K) = {ex.kl_nats:.4f} nats = {ex.kl_bits:.4f} bits (the dialogue says {ex.dialogue_result}, "
        f"though its own terms add up to {ex.dialogue_terms_sum:.4f}); the reverse D(K‖Q) = "
        f"{ex.reverse_kl_nats:.4f} nats, because KL is not symmetric. A plain average of the three logs, "
        f"as the dialogue first describes it, would be {ex.plain_average_of_logs:.4f}. Attention would "
        f"score these two vectors by their dot product, {ex.dot_product:.2f}, scaled and put through a "
        "softmax over all keys."
    )


def headline(result: DotProductNotKL) -> list[tuple[str, str]]:
    return [
        ("Negative entries in q", f"{result.query_negative_fraction:.0%}"),
        ("Sum of q's entries", f"{result.query_sum:.2f}"),
        ("Max |softmax(q·k/√d) − model|", f"{result.dot_product_max_diff:.1e}"),
        ("Max |KL ranking − model|", f"{result.kl_max_diff:.2f}"),
    ]


def status(result: DotProductNotKL) -> tuple[bool, str]:
    if result.dot_product_max_diff <= result.dot_product_tolerance:
        return True, "Scaled dot products reproduce the model's weights; KL does not."
    return False, "The dot-product recomputation does not match: please report this."


DEMO = Demo(
    id="dot-product-not-kl",
    reads_sentence=True,
    title="Dot product, not KL divergence",
    summary=(
        "Real queries and keys have negative entries and do not sum to 1, so they are not "
        "distributions and KL divergence cannot compare them. The model's weights match softmax of "
        "scaled dot products, not any KL ranking. Also: the dialogue's KL example recomputed."
    ),
    default_prompt="The query is compared with every key by a dot product.",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    params=(Param("layer", "layer", 5, "Layer"), Param("head", "head", 0, "Query head")),
)
