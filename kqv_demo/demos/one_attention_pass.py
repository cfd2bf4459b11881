"""One attention pass per layer: no loop inside a layer, and no query passed between layers.

In one forward pass we count how often each layer's attention (`blocks.{L}.attn.pattern`)
and MLP (`blocks.{L}.mlp_out`) ran: exactly once each. We then check the whole block as
straight-line arithmetic: its output equals its input plus one attention update plus one
MLP update, h_out = h_in + Attn(norm h_in) + MLP(norm(h_in + Attn)), to the last bit. There
is no room for a second attention pass. What goes to the next layer is this hidden state
(one vector per token), not a query: the next layer's input is exactly this layer's output,
and its keys are recomputed from it with the next layer's own W_K.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
import torch

from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo


@dataclass(frozen=True)
class OneAttentionPass:
    truncation: str | None
    n_tokens: int
    n_layers: int  # config.num_hidden_layers
    n_heads: int
    attention_calls: np.ndarray  # [layers] firings of blocks.{L}.attn.pattern in one forward pass
    mlp_calls: np.ndarray  # [layers] firings of blocks.{L}.mlp_out
    pattern_shape: tuple[int, ...]  # of the one attention call in layer 0: [heads, T, T], all heads at once
    residual_max_diff: np.ndarray  # [layers] max |resid_post − (resid_pre + attn_out + mlp_out)|
    residual_scale: float  # largest |entry| of any block output, for scale
    handoff_max_diff: float  # max |resid_pre[L+1] − resid_post[L]| over layers
    next_keys_max_diff: np.ndarray  # [layers − 1] layer L+1's keys vs W_K(L+1) · RMSNorm(resid_post[L])
    query_shape: tuple[int, ...]  # one layer's queries: [heads, T, d_head]
    hidden_shape: tuple[int, ...]  # what a layer hands on: [T, d_model]
    query_weights: int  # distinct q_proj matrices: one per layer


def _rms_norm(hidden: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return weight * (hidden * torch.rsqrt(hidden.pow(2).mean(-1, keepdim=True) + eps))


def compute(runtime, prompt: str) -> OneAttentionPass:
    shape = runtime.shape()
    wanted = (".resid_pre", ".resid_post", ".attn_out", ".mlp_out", ".attn.k")
    extra = ("blocks.0.attn.pattern", "blocks.0.attn.rot_q")
    trace = runtime.trace(prompt, names_filter=lambda name: name.endswith(wanted) or name in extra)
    n_layers = shape.n_layers
    block = lambda layer, part: trace[f"blocks.{layer}.{part}"]  # noqa: E731
    residual, handoff, next_keys, scale = [], 0.0, [], 0.0
    for layer in range(n_layers):
        rebuilt = block(layer, "resid_pre") + block(layer, "attn_out") + block(layer, "mlp_out")
        residual.append(float((block(layer, "resid_post") - rebuilt).abs().max()))
        scale = max(scale, float(block(layer, "resid_post").abs().max()))
        if layer + 1 < n_layers:
            output = block(layer, "resid_post")
            handoff = max(handoff, float((block(layer + 1, "resid_pre") - output).abs().max()))
            prefix = f"model.layers.{layer + 1}."
            norm_weight = runtime.parameter(prefix + "input_layernorm.weight")
            normed = _rms_norm(output, norm_weight, shape.norm_eps)
            keys = normed @ runtime.parameter(prefix + "self_attn.k_proj.weight").T  # [T, kv_heads * d_head]
            keys = keys.view(trace.n_tokens, -1, shape.d_head).transpose(0, 1)
            next_keys.append(float((keys - block(layer + 1, "attn.k")).abs().max()))
    shapes = runtime.parameter_shapes()
    return OneAttentionPass(
        truncation=trace.notice,
        n_tokens=trace.n_tokens,
        n_layers=n_layers,
        n_heads=shape.n_heads,
        attention_calls=np.array([trace.calls.get(f"blocks.{i}.attn.pattern", 0) for i in range(n_layers)]),
        mlp_calls=np.array([trace.calls.get(f"blocks.{i}.mlp_out", 0) for i in range(n_layers)]),
        pattern_shape=tuple(trace["blocks.0.attn.pattern"].shape),
        residual_max_diff=np.array(residual),
        residual_scale=scale,
        handoff_max_diff=handoff,
        next_keys_max_diff=np.array(next_keys),
        query_shape=tuple(trace["blocks.0.attn.rot_q"].shape),
        hidden_shape=tuple(block(0, "resid_post").shape),
        query_weights=sum(1 for name in shapes if name.endswith("self_attn.q_proj.weight")),
    )


def chart(result: OneAttentionPass):
    rows = [
        {"layer": str(layer), "calls in one forward pass": int(calls), "sublayer": name}
        for name, values in (("attention", result.attention_calls), ("MLP", result.mlp_calls))
        for layer, calls in enumerate(values)
    ]
    order = [str(layer) for layer in range(result.n_layers)]
    top = max(2, int(max(result.attention_calls.max(), result.mlp_calls.max())) + 1)
    return charts.grouped_bars(
        pd.DataFrame(rows), "layer", "calls in one forward pass", "sublayer",
        f"How often each layer ran its attention and its MLP while reading {result.n_tokens} tokens",
        x_order=order, y_title="calls in one forward pass", width=620,
    ).encode(
        x=alt.X("layer:N", sort=order, title="layer (block index)", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("calls in one forward pass:Q", title="calls in one forward pass",
                # Ticks 0, 1, 2, …: the bars end at 1, so 1 must be labelled. Format ".0f", not "d": in the app,
                # explicit values with format "d" lose the middle tick (only 0 and 2 are drawn).
                scale=alt.Scale(domain=[0, top]), axis=alt.Axis(values=list(range(top + 1)), format=".0f")),
    )


def _all_once(result: OneAttentionPass) -> bool:
    return bool((result.attention_calls == 1).all() and (result.mlp_calls == 1).all())


def _closeness(diff: float) -> str:
    return "exactly, to the last bit" if diff == 0 else f"to within {diff:.1e}"


def explain(result: OneAttentionPass) -> str:
    once = "exactly once" if _all_once(result) else "NOT exactly once"
    return (
        f"While reading your {result.n_tokens} tokens, each of the {result.n_layers} layers ran its "
        "attention "
        f"{once} (all {result.pattern_shape[0]} heads in one call, weights of shape "
        f"{'×'.join(map(str, result.pattern_shape))}) and its MLP once. Nothing loops inside a layer: "
        "its output "
        "is its input plus one attention update plus one MLP update, and adding those up by hand reproduces "
        f"the model's output {_closeness(result.residual_max_diff.max())} (entries reach "
        f"{result.residual_scale:,.0f}). What moves on is the hidden state, one vector of "
        f"{result.hidden_shape[1]} numbers per token, not a query: the next layer's input equals this output "
        f"(difference {result.handoff_max_diff:.1e}), and its keys are computed afresh from it by its own "
        f"weights (max difference {result.next_keys_max_diff.max():.1e})."
    )


def headline(result: OneAttentionPass) -> list[tuple[str, str]]:
    return [
        ("Attention calls per layer", "/".join(map(str, sorted(set(result.attention_calls.tolist()))))),
        ("MLP calls per layer", "/".join(map(str, sorted(set(result.mlp_calls.tolist()))))),
        ("Max |out − (in + attn + MLP)|", f"{result.residual_max_diff.max():.1e}"),
        ("Next layer's input − this output", f"{result.handoff_max_diff:.1e}"),
    ]


def status(result: OneAttentionPass) -> tuple[bool, str]:
    if _all_once(result) and result.residual_max_diff.max() <= 1e-3 and result.handoff_max_diff == 0:
        return True, "One attention call and one MLP call per layer; the block adds up exactly."
    return False, "The counts or the sum did not come out as expected: please report this."


def details(result: OneAttentionPass) -> str:
    return (
        "Counts come from `trace.calls`, how often each hook point fired during one forward pass: "
        "`blocks.{L}.attn.pattern` (the attention weights) and `blocks.{L}.mlp_out` (the MLP's output). "
        "The block check is `resid_post − (resid_pre + attn_out + mlp_out)`, where `attn_out` "
        "is what "
        "attention adds (after o_proj) and `mlp_out` what the MLP adds (after down_proj). The key check "
        "recomputes layer L+1's keys before RoPE as k_proj(RMSNorm(resid_post[L])) with layer L+1's weights. "
        f"Queries exist only inside a layer (shape {'×'.join(map(str, result.query_shape))}); each of the "
        f"{result.query_weights} layers has its own q_proj."
    )


DEMO = Demo(
    id="one-attention-pass",
    reads_sentence=True,
    title="Attention runs once per layer; there is no loop inside a layer",
    summary=(
        "In one forward pass each layer calls its attention once (all heads together) and its MLP once. "
        "The block's output is exactly input + attention update + MLP update, and what passes to the next "
        "layer is the hidden state, from which that layer computes new queries, keys and values."
    ),
    default_prompt="Each layer reads the hidden states once and adds its update.",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
)
