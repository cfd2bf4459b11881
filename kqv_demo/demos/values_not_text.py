"""Values are vectors; the text comes from the LM head.

For one layer and query head of SmolLM2 we show what a head's "value" really is and
what it is used for: the head's output (the input of o_proj, `blocks.{L}.attn.z`) equals
its attention weights times the value vectors V, while the same weights times the key
vectors K miss it by a wide margin. The values are 64-number vectors that exist for every
prompt token before any output token is produced. The output text comes from a different
place: the final hidden state of the last token, multiplied by the LM head (here the tied
embedding matrix), gives one score per vocabulary token; a softmax turns the scores into
probabilities and the next token is picked from them. This refutes "the output of the model
is the value" and "the weights combine the key vectors".
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
import torch

from kqv_demo import numerics
from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param, check_layer_head
from kqv_demo.trace import token_display
from kqv_demo.markup import literal

TOP_K = 10


@dataclass(frozen=True)
class ValuesNotText:
    truncation: str | None
    tokens: list[str]  # prompt tokens as axis labels
    layer: int
    head: int
    kv_head: int  # the key/value head this query head reads
    n_layers: int
    n_kv_heads: int
    d_head: int
    weights_v_max_diff: float  # max |weights @ V - head output|, this head
    weights_k_max_diff: float  # max |weights @ K - head output|, this head
    layer_weights_v_max_diff: float  # the same, worst over every head of the layer
    weights_v_tolerance: float  # the most float32 rounding can make two computations of weights @ V differ, any head
    layer_weights_k_min_diff: float  # weights @ K: the closest any head of the layer comes
    layer_weights_k_max_diff: float
    value_shape: tuple[int, ...]  # [kv_heads, T, d_head] at this layer
    values_in_prompt: int  # value vectors computed for the prompt: tokens × kv_heads × layers
    hidden_size: int
    vocab_size: int
    lm_head: str  # the parameter used as the LM head (tied to the embeddings in SmolLM2)
    lm_head_shape: tuple[int, ...]
    logits_max_diff: float  # LM head recomputed from the final hidden state vs the model's logits
    top_tokens: list[str]  # the TOP_K most likely next tokens, most likely first
    top_probabilities: np.ndarray  # [TOP_K]
    chosen_token: str  # argmax: what greedy decoding would write next
    chosen_probability: float


def _lm_head_name(runtime) -> str:
    return "model.embed_tokens.weight" if runtime.shape().tied_embeddings else "lm_head.weight"


def compute(runtime, prompt: str, layer: int = 3, head: int = 4) -> ValuesNotText:
    """Trace `prompt` once: layer `layer`'s attention, every layer's values, and the final hidden state."""
    prefix = f"blocks.{layer}.attn."

    def keep(name: str) -> bool:
        return name.startswith(prefix) or name.endswith(".attn.v") or name == "ln_final.out"

    trace = runtime.trace(prompt, names_filter=keep)
    check_layer_head(trace.model, layer, head)
    shape = trace.model
    group = shape.n_heads // shape.n_kv_heads
    pattern = trace[prefix + "pattern"]  # [H, T, T]
    keys, values = trace[prefix + "rot_k"], trace[prefix + "v"]  # [H_kv, T, d_head]
    out = trace[prefix + "z"]  # [T, H, d_head]
    v_diffs, k_diffs = [], []
    for h in range(shape.n_heads):
        g = h // group
        v_diffs.append(float((pattern[h] @ values[g] - out[:, h]).abs().max()))
        k_diffs.append(float((pattern[h] @ keys[g] - out[:, h]).abs().max()))
    values_in_prompt = sum(
        trace[f"blocks.{i}.attn.v"].shape[:2].numel() for i in range(shape.n_layers)
    )

    name = _lm_head_name(runtime)
    unembedding = runtime.parameter(name)  # [vocab, d_model]
    final = trace["ln_final.out"][-1]  # the last token's final hidden state, after the final norm
    logits = final @ unembedding.T
    probabilities = torch.softmax(logits, dim=-1)
    top = probabilities.topk(TOP_K)
    chosen = int(probabilities.argmax())
    return ValuesNotText(
        truncation=trace.notice,
        tokens=trace.token_labels(),
        layer=layer,
        head=head,
        kv_head=head // group,
        n_layers=shape.n_layers,
        n_kv_heads=shape.n_kv_heads,
        d_head=shape.d_head,
        weights_v_max_diff=v_diffs[head],
        weights_k_max_diff=k_diffs[head],
        layer_weights_v_max_diff=max(v_diffs),
        weights_v_tolerance=max(numerics.matmul_noise(pattern[h], values[h // group]) for h in range(shape.n_heads)),
        layer_weights_k_min_diff=min(k_diffs),
        layer_weights_k_max_diff=max(k_diffs),
        value_shape=tuple(values.shape),
        values_in_prompt=values_in_prompt,
        hidden_size=final.shape[-1],
        vocab_size=logits.shape[-1],
        lm_head=name,
        lm_head_shape=tuple(unembedding.shape),
        logits_max_diff=float((logits - trace.logits[-1]).abs().max()),
        top_tokens=runtime.token_texts(top.indices.tolist()),
        top_probabilities=top.values.numpy().copy(),
        chosen_token=runtime.decode([chosen]),
        chosen_probability=float(probabilities[chosen]),
    )


def chart(result: ValuesNotText) -> alt.Chart:
    labels = [f"{i + 1}. {token_display(t)}" for i, t in enumerate(result.top_tokens)]
    kinds = ["picked (most likely)", "other candidates"]
    data = pd.DataFrame(
        {
            "next token": labels,
            "probability": result.top_probabilities.astype(float),
            "picked": [kinds[0] if i == 0 else kinds[1] for i in range(len(labels))],
        }
    )
    title = f"Next token: the top {len(labels)} of {result.vocab_size:,} (LM head, then softmax)"
    return (
        alt.Chart(data, title=title)
        .mark_bar()
        .encode(
            x=alt.X("next token:N", sort=labels, title="candidate next token", axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("probability:Q", title="probability (softmax of the LM head's scores)"),
            color=alt.Color("picked:N", scale=charts.palette(2), sort=kinds, title=None,
                            legend=alt.Legend(orient="top", labelLimit=0)),
            tooltip=["next token", alt.Tooltip("probability:Q", format=".4f")],
        )
        .properties(width=max(360, 48 * len(labels)), height=260)
    )


def explain(result: ValuesNotText) -> str:
    return (
        f"In layer {result.layer}, query head {result.head} reads key/value head {result.kv_head}. "
        "Its output is its attention weights times the **value** vectors: they match to "
        f"{result.weights_v_max_diff:.1e}. The same weights times the key vectors miss by up to "
        f"{result.weights_k_max_diff:.2f}, so the weights mix values, not keys. Values are lists of "
        f"{result.d_head} numbers, not text, and they exist for all {len(result.tokens)} prompt tokens "
        f"before anything is written ({result.values_in_prompt:,} of them in {result.n_layers} layers). "
        "The text comes from the end of the model: the last token's final hidden state "
        f"({result.hidden_size} numbers) times the LM head gives a score for each of the "
        f"{result.vocab_size:,} vocabulary tokens, and a softmax turns them into the probabilities in "
        "the chart (· marks a leading space). The most likely next token is "
        f"“{literal(token_display(result.chosen_token))}” "
        f"({result.chosen_probability:.2f})."
    )


def headline(result: ValuesNotText) -> list[tuple[str, str]]:
    return [
        ("Max |weights·V − head output|", f"{result.weights_v_max_diff:.1e}"),
        ("Max |weights·K − head output|", f"{result.weights_k_max_diff:.2f}"),
        ("Next token (greedy)", f"“{literal(token_display(result.chosen_token))}” {result.chosen_probability:.2f}"),
    ]


def status(result: ValuesNotText) -> tuple[bool, str]:
    if result.weights_v_max_diff <= result.weights_v_tolerance and result.weights_k_max_diff > 0.1:
        return True, "The weights mix the values (not the keys); the text comes from the LM head."
    return False, "The value recomputation does not match the head's output: please report this."


def details(result: ValuesNotText) -> str:
    layer, head, kv = result.layer, result.head, result.kv_head
    return (
        "$$o_i = \\sum_j a_{ij}\\, v_j \\qquad "
        "p(\\text{next}) = \\mathrm{softmax}(W_U\\, h^{(L)}_{T})$$\n\n"
        f"Over all heads of layer {layer}: weights·V is off by at most "
        f"{result.layer_weights_v_max_diff:.1e}; "
        f"weights·K is off by {result.layer_weights_k_min_diff:.2f} (closest head) to "
        f"{result.layer_weights_k_max_diff:.2f}. The LM head recomputed from `ln_final.out` matches the "
        f"model's logits to {result.logits_max_diff:.1e}.\n\n"
        "```python\n"
        f"a = trace['blocks.{layer}.attn.pattern'][{head}]     # [T, T] attention weights\n"
        f"V = trace['blocks.{layer}.attn.v'][{kv}]           # {list(result.value_shape[1:])} values\n"
        f"K = trace['blocks.{layer}.attn.rot_k'][{kv}]\n"
        f"out = trace['blocks.{layer}.attn.z'][:, {head}]  # the input of o_proj, this head\n"
        "(a @ V - out).abs().max()   # ~0\n"
        "(a @ K - out).abs().max()   # large\n"
        f"W_U = runtime.parameter('{result.lm_head}')        # {list(result.lm_head_shape)}\n"
        "logits = trace['ln_final.out'][-1] @ W_U.T\n"
        "```"
    )


DEMO = Demo(
    id="values-not-text",
    reads_sentence=True,
    title="Values are vectors; the text comes from the LM head",
    summary=(
        "A head's output is its attention weights times the value vectors (not the keys). Values are "
        "64-number vectors that exist for every prompt token before anything is generated. The output "
        "text comes from the final hidden state through the LM head and a softmax, one token at a time."
    ),
    default_prompt="The Eiffel Tower is located in the city of",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    params=(Param("layer", "layer", 3, "Layer"), Param("head", "head", 4, "Query head")),
)
