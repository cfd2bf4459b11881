"""The KV cache holds past keys and values, not queries; caching them changes nothing but rounding.

SmolLM2 generates a few tokens with its KV cache (`Runtime.generate`). After each step we count
every number held by every tensor of the cache object itself (`runtime.cache_tensors`), and at the
end list those tensors: one key tensor and one value tensor per layer, nothing shaped like a query.
We also record the queries that the attention receives: after the first step only the new token's
query is there. A past token's query already did its one job, scoring the keys before it, and its
row of weights can never change under the causal mask, so nothing keeps it. The cache grows by
2 × layers × key/value heads × d_head numbers per token (11,520 floats = 46,080 bytes in float32
for SmolLM2), read here from the model's shape and checked against the tensors held.

Then one pass over the same tokens without a cache recomputes every key, value and next-token
logit at once. The cached keys and values, computed one token at a time, agree with it within
numerics.KEY_VALUE_NOISE, and so do the next-token logits of every step within numerics.LOGIT_NOISE:
the cache is a saving of work, not an approximation.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
import torch

from kqv_demo import numerics
from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param
from kqv_demo.markup import literal
from kqv_demo.trace import token_display

ZERO_AT = 1e-9  # where a difference of exactly 0 is drawn on the log scale
CACHED = ("keys", "values")  # the names of the tensors a transformers cache layer holds


@dataclass(frozen=True)
class KVCacheContents:
    truncation: str | None
    prompt_tokens: list[str]
    generated: list[str]  # one token per step
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    bytes_per_number: int  # of the cached tensors' dtype (float32: 4)
    context_length: int  # the longest context SmolLM2 takes (config.max_position_embeddings)
    cache_lengths: list[int]  # positions in the cache after each step (from the cache itself)
    # per step: layer 0's keys as the attention received them [kv_heads, positions, d_head]
    key_shapes: list[tuple[int, ...]]
    numbers_held: list[int]  # per step: every number of every tensor the cache object holds
    cache_held: dict[str, tuple[int, ...]]  # after the last step: each tensor of the cache object, by path, its shape
    query_rows: list[int]  # per step: positions whose queries the attention received
    compared_positions: int  # cached positions also in the recomputation (the same tokens)
    generated_compared: int  # of them, positions cached one generation step at a time
    key_diff: np.ndarray  # [layers] max |cached − recomputed| / max |recomputed| of the keys
    value_diff: np.ndarray  # [layers] the same for the values
    bound: float  # numerics.KEY_VALUE_NOISE: how far two kernels' keys or values may differ, relatively
    logit_diff: np.ndarray  # [steps compared] max |Δ| of the next-token logits, cached vs recomputed
    probability_diff: np.ndarray  # [steps compared] max |Δ| of the next-token probabilities
    logit_bound: float  # numerics.LOGIT_NOISE

    @property
    def numbers_per_token(self) -> int:
        """Keys and values, in every layer and key/value head: what one token adds to the cache."""
        return 2 * self.n_layers * self.n_kv_heads * self.d_head

    @property
    def bytes_per_token(self) -> int:
        return self.numbers_per_token * self.bytes_per_number

    @property
    def query_numbers_per_token(self) -> int:
        """What keeping queries too would add per token: one per query head and layer."""
        return self.n_layers * self.n_heads * self.d_head

    @property
    def holds_only_keys_and_values(self) -> bool:
        """The cache object holds one key and one value tensor per layer, each [1, kv_heads, positions, d_head]."""
        wanted = {f"layers.{layer}.{name}" for layer in range(self.n_layers) for name in CACHED}
        shape = (1, self.n_kv_heads, self.cache_lengths[-1], self.d_head)
        return set(self.cache_held) == wanted and all(held == shape for held in self.cache_held.values())

    @property
    def sizes_match(self) -> bool:
        return self.holds_only_keys_and_values and all(
            held == length * self.numbers_per_token for held, length in zip(self.numbers_held, self.cache_lengths)
        )

    @property
    def only_new_queries(self) -> bool:
        return self.query_rows[0] == len(self.prompt_tokens) and all(rows == 1 for rows in self.query_rows[1:])

    @property
    def matches_recomputation(self) -> bool:
        return bool((self.key_diff <= self.bound).all() and (self.value_diff <= self.bound).all())

    @property
    def same_predictions(self) -> bool:
        return len(self.logit_diff) > 0 and bool((self.logit_diff <= self.logit_bound).all())


def relative_diff(cached: torch.Tensor, recomputed: torch.Tensor) -> float:
    """max |cached − recomputed| / max |recomputed|: the measure numerics.KEY_VALUE_NOISE bounds."""
    scale = float(recomputed.abs().max())
    return float((cached - recomputed).abs().max()) / scale if scale else 0.0


def differences(cache: dict[str, torch.Tensor], full, positions: int) -> tuple[np.ndarray, np.ndarray]:
    """Per layer, `relative_diff` of the cached keys and of the cached values (`Runtime.cache_tensors`) against
    those that the pass without a cache (`full`, a Trace) computed, over the first `positions` positions."""
    def per_layer(name: str, hook: str) -> np.ndarray:
        return np.array([relative_diff(cache[f"layers.{layer}.{name}"][0, :, :positions],
                                       full[f"blocks.{layer}.attn.{hook}"][:, :positions])
                         for layer in range(full.model.n_layers)])

    return per_layer("keys", "rot_k"), per_layer("values", "v")  # the cache holds keys after RoPE


def compute(runtime, prompt: str, steps: int) -> KVCacheContents:
    shape = runtime.shape()
    recorded = ("blocks.0.attn.rot_q", "blocks.0.attn.rot_k")  # one layer shows what the attention receives per step
    ids, truncation, records = runtime.generate(prompt, steps, names_filter=lambda name: name in recorded,
                                                keep_cache=True)
    cache = records[-1].cache

    # The cache after the last step holds the prompt and every generated token but the last (never fed back).
    cached_ids = ids + [step.token_id for step in records[:-1]]
    text = runtime.decode(cached_ids, clean_up_spaces=False)
    full = runtime.trace(text, names_filter=lambda name: name.endswith((".attn.rot_k", ".attn.v")),
                         max_tokens=len(cached_ids), all_logits=True)
    same = 0  # the recomputation reads the same tokens up to here (re-tokenizing text can merge tokens)
    while same < min(len(cached_ids), full.n_tokens) and cached_ids[same] == full.token_ids[same]:
        same += 1
    key_diff, value_diff = differences(cache, full, same)
    # Step i chose its token from the logits after position len(ids) − 1 + i: compare those the recomputation read.
    compared = [(step.logits, full.logits[len(ids) - 1 + i]) for i, step in enumerate(records) if len(ids) + i <= same]
    logit_diff = [float((cached - recomputed).abs().max()) for cached, recomputed in compared]
    probability_diff = [float((torch.softmax(cached, -1) - torch.softmax(recomputed, -1)).abs().max())
                        for cached, recomputed in compared]
    return KVCacheContents(
        truncation=truncation.message if truncation else None,
        prompt_tokens=runtime.token_texts(ids),
        generated=[step.token for step in records],
        n_layers=shape.n_layers,
        n_heads=shape.n_heads,
        n_kv_heads=shape.n_kv_heads,
        d_head=shape.d_head,
        bytes_per_number=cache["layers.0.keys"].element_size(),
        context_length=shape.max_positions,
        cache_lengths=[step.cache_length for step in records],
        key_shapes=[tuple(step.activations["blocks.0.attn.rot_k"].shape) for step in records],
        numbers_held=[step.cache_numbers for step in records],
        cache_held={name: tuple(tensor.shape) for name, tensor in cache.items()},
        query_rows=[int(step.activations["blocks.0.attn.rot_q"].shape[1]) for step in records],
        compared_positions=same,
        generated_compared=max(0, same - len(ids)),
        key_diff=key_diff,
        value_diff=value_diff,
        bound=numerics.KEY_VALUE_NOISE,
        logit_diff=np.array(logit_diff),
        probability_diff=np.array(probability_diff),
        logit_bound=numerics.LOGIT_NOISE,
    )


def _step_label(result: KVCacheContents, index: int) -> str:
    return f"step {index + 1}: {result.cache_lengths[index]} tokens"


def _sizes(result: KVCacheContents) -> alt.Chart:
    """Kilobytes held per step, keys and values stacked; queries held: none."""
    half = [held // 2 * result.bytes_per_number / 1024 for held in result.numbers_held]
    steps = [_step_label(result, i) for i in range(len(half))]
    parts = ["keys", "values"]
    data = pd.DataFrame([
        {"step": step, "held": part, "KB": kb, "tokens": length}
        for step, kb, length in zip(steps, half, result.cache_lengths)
        for part in parts
    ])
    return (
        alt.Chart(data, title=alt.TitleParams("What the cache holds after each step",
                                              subtitle="queries held: none (0 bytes at every step)"))
        .mark_bar()
        .encode(
            x=alt.X("step:N", sort=steps, title=None, axis=alt.Axis(labelAngle=-45, labelOverlap=False)),
            y=alt.Y("sum(KB):Q", title="kilobytes (float32)", stack="zero"),
            color=alt.Color("held:N", sort=parts, scale=charts.palette(2), title=None,
                            legend=alt.Legend(orient="top")),
            order=alt.Order("held:N"),
            tooltip=["step", "held", "tokens", alt.Tooltip("KB:Q", format=",.1f")],
        )
        .properties(width=max(160, 17 * len(steps)), height=240)  # a -45° label needs ~17 px
    )


def _agreement(result: KVCacheContents) -> alt.LayerChart:
    """Per layer: cached vs recomputed, relative difference on a log scale, under the float32 bound
    (what two CPUs' kernels may give; a half-precision cache would be above it)."""
    rows = []
    for layer in range(result.n_layers):
        for part, values in (("keys", result.key_diff), ("values", result.value_diff)):
            value = float(values[layer])
            rows.append({"layer": layer, "what": part, "difference": max(value, ZERO_AT), "exact": value})
        rows.append({"layer": layer, "what": "float32 bound", "difference": result.bound, "exact": result.bound})
    data = pd.DataFrame(rows)
    kinds = ["keys", "values", "float32 bound"]
    base = alt.Chart(data, title=alt.TitleParams(
        "Cached vs recomputed without a cache",
        subtitle=f"max |difference| / max |entry| per layer ({result.compared_positions} positions; 0 drawn at 1e-9)",
    )).encode(
        x=alt.X("layer:Q", title="layer", scale=alt.Scale(domain=[0, result.n_layers - 1], nice=False)),
        y=alt.Y("difference:Q", title="relative difference", scale=alt.Scale(type="log", domain=[ZERO_AT, 1]),
                axis=alt.Axis(format="~e")),
        color=alt.Color("what:N", sort=kinds, scale=alt.Scale(domain=kinds, range=[charts.OKABE_ITO[0],
                        charts.OKABE_ITO[1], charts.OKABE_ITO[7]]), title=None, legend=alt.Legend(orient="top")),
        tooltip=["layer", "what", alt.Tooltip("exact:Q", format=".2e")],
    )
    points = base.transform_filter("datum.what != 'float32 bound'").mark_point(filled=True, size=30)
    line = base.transform_filter("datum.what == 'float32 bound'").mark_line(strokeDash=[5, 4])
    return (line + points).properties(width=280, height=240)


def chart(result: KVCacheContents) -> alt.HConcatChart:
    return alt.hconcat(_sizes(result), _agreement(result)).resolve_scale(color="independent")


def _size(n_bytes: int) -> str:
    if n_bytes < 2**20:
        return f"{n_bytes / 2**10:,.1f} KB"
    return f"{n_bytes / 2**20:,.1f} MB"


def _query_rows(result: KVCacheContents) -> str:
    if len(result.query_rows) == 1:
        return f"{result.query_rows[0]} queries in the one step"
    if result.only_new_queries:
        return f"{result.query_rows[0]} queries at step 1, then 1 at each later step"
    return f"queries per step: {', '.join(map(str, result.query_rows))}"


def explain(result: KVCacheContents) -> str:
    text = literal("".join(token_display(token) for token in result.generated))  # whole: a URL spans tokens
    tokens = result.cache_lengths[-1]
    worst = max(float(result.key_diff.max()), float(result.value_diff.max()))
    return (
        f"SmolLM2 wrote “{text}”. After each step the cache holds, in each of its {result.n_layers} layers, the keys "
        f"and the values of every token so far ({list(result.key_shapes[-1])} each after the last step: key/value "
        f"heads × tokens × {result.d_head}). Per token: 2 × {result.n_layers} × {result.n_kv_heads} × {result.d_head} "
        f"= **{result.numbers_per_token:,} numbers = {result.bytes_per_token:,} bytes**; {tokens} tokens take "
        f"{_size(tokens * result.bytes_per_token)}, a full {result.context_length:,}-token context "
        f"{_size(result.context_length * result.bytes_per_token)}. **No query is kept**: after step 1 the attention "
        f"received only the new token's query ({_query_rows(result)}). "
        "A past query's weights can never change under the causal mask, so it is never needed again. Recomputed "
        f"without a cache, the same {result.compared_positions} positions ({result.generated_compared} cached one "
        f"step at a time) give the same keys and values up to float32 rounding: at most {worst:.0e} of the largest "
        f"entry, under the bound of {result.bound:.0e}; each step's next-token logits by at most "
        f"{float(result.logit_diff.max()):.0e} (bound {result.logit_bound:.0e}): the same predictions."
    )


def headline(result: KVCacheContents) -> list[tuple[str, str]]:
    worst = max(float(result.key_diff.max()), float(result.value_diff.max()))
    return [
        ("Cache per token", f"{result.numbers_per_token:,} floats = {result.bytes_per_token:,} bytes"),
        (f"Cache after step {len(result.generated)}", _size(result.cache_lengths[-1] * result.bytes_per_token)),
        ("Queries kept", "0"),
        ("Cached vs recomputed (relative)", f"{worst:.0e}"),
        ("Next-token probabilities, max change", f"{float(result.probability_diff.max()):.0e}"),
    ]


def status(result: KVCacheContents) -> tuple[bool, str]:
    if result.sizes_match and result.only_new_queries and result.matches_recomputation and result.same_predictions:
        return True, "The cache holds exactly the past keys and values, no queries, equal to a recomputation."
    return False, "The cache did not hold what is described here: please report this."


def details(result: KVCacheContents) -> str:
    return (
        "$$\\text{cache per token} = 2 \\times L \\times H_{kv} \\times d_{head} = 2 \\times "
        f"{result.n_layers} \\times {result.n_kv_heads} \\times {result.d_head} = {result.numbers_per_token}$$\n\n"
        "```python\n"
        f"ids, _, steps = runtime.generate(prompt, {len(result.generated)}, names_filter=..., keep_cache=True)\n"
        f"steps[-1].cache['layers.0.keys'].shape   # {[1, *result.key_shapes[-1]]}: the cache of layer 0\n"
        f"steps[-1].activations['blocks.0.attn.rot_q'].shape   # [{result.n_heads}, {result.query_rows[-1]}, "
        f"{result.d_head}]: only the new token\n"
        "full = runtime.trace(text_of_the_same_tokens, all_logits=True)   # no cache: every key again\n"
        "```\n\n"
        f"The bound, {result.bound:.0e} of the largest entry, is what two CPUs' float32 kernels can differ by "
        "(measured on four kernel sets with a margin of 14); a cache rounded to half precision (fp16) would "
        f"exceed it in every layer. The logits' bound, {result.logit_bound:.0e}, is the app's bound for "
        "any two passes over the same tokens."
    )


DEMO = Demo(
    id="kv-cache-contents",
    title="The KV cache holds past keys and values, not queries",
    summary=(
        "Generate a few tokens and look inside the KV cache: per token it holds one key and one value per layer "
        "and key/value head, and no queries, which are never needed again. The cached "
        "keys and values equal a recomputation without the cache, up to float32 rounding."
    ),
    default_prompt="The keys and values of earlier tokens are",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    prompt_label="Text to continue",
    params=(Param("steps", "int", 4, "Tokens to generate", low=1, high=20),),
)
