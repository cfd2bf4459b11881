"""The KV cache holds past keys and values, not queries; caching them changes nothing but rounding.

SmolLM2 generates a few tokens with its KV cache (`Runtime.generate`). At each step we record,
in every layer, what the attention call receives: the keys and values of every cached position
(these tensors are the cache's own contents) and the queries of the tokens fed in at that step.
After the first step only the new token's query is there: a past token's query already did its
one job, scoring the keys before it, and its row of weights can never change under the causal
mask, so nothing keeps it. The cache grows by 2 × layers × key/value heads × d_head numbers per
token (11,520 floats = 46,080 bytes in float32 for SmolLM2), read here from the model's shape
and checked against the tensors held.

Then one pass over the same tokens without a cache recomputes every key and value at once.
The cached ones, computed one token at a time, agree with it up to float32 rounding: the
cache is a saving of work, not an approximation.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
import torch

from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param
from kqv_demo.markup import literal
from kqv_demo.trace import token_display

FLOAT32_EPS = float(np.finfo(np.float32).eps)  # 2**-23
ZERO_AT = 1e-9  # where a difference of exactly 0 is drawn on the log scale


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
    key_shapes: list[tuple[int, ...]]  # per step: one layer's cached keys [kv_heads, positions, d_head]
    shapes_agree: bool  # every layer's keys and values had that shape at every step
    numbers_held: list[int]  # per step: all cached keys and values of all layers, counted
    query_rows: list[int]  # per step: positions whose queries the attention received
    compared_positions: int  # cached positions also in the recomputation (the same tokens)
    generated_compared: int  # of them, positions cached one generation step at a time
    key_diff: np.ndarray  # [layers] max |cached − recomputed| / max |recomputed| of the keys
    value_diff: np.ndarray  # [layers] the same for the values
    bound: np.ndarray  # [layers] float32 bound on those relative differences

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
    def sizes_match(self) -> bool:
        return self.shapes_agree and all(
            held == length * self.numbers_per_token for held, length in zip(self.numbers_held, self.cache_lengths)
        )

    @property
    def only_new_queries(self) -> bool:
        return self.query_rows[0] == len(self.prompt_tokens) and all(rows == 1 for rows in self.query_rows[1:])

    @property
    def matches_recomputation(self) -> bool:
        return bool((self.key_diff <= self.bound).all() and (self.value_diff <= self.bound).all())


def recompute_bound(layer: int, config, n_tokens: int) -> float:
    """How far (relative to the largest entry) a key or value of `layer` computed in two float32 passes by
    different kernels may differ. First-order worst case (Higham 2002, §3.1): two evaluations of an inner
    product of length n differ by at most n·EPS times the sum of its terms' magnitudes; along the way from
    the token embedding to this layer's key, every block adds the inner products of its two RMSNorms, the
    q/k/v projections, the scores, the softmax sum and weights @ V over the T keys, o_proj, gate/up and down;
    then this layer's norm and projection, and RoPE's few roundings. It assumes that a block does not amplify
    a relative error in the residual stream and that no sum cancels heavily: a yardstick, not a proof. The
    measured differences stay about 10⁴ times below it on the AVX-512, AVX2 and plain-code paths."""
    d_model, d_head, d_mlp = config.hidden_size, config.head_dim, config.intermediate_size
    heads_width = config.num_attention_heads * d_head
    block_path = 2 * d_model + d_model + d_head + 2 * n_tokens + heads_width + d_model + d_mlp
    return FLOAT32_EPS * (layer * block_path + 2 * d_model + 4)


def _relative_diff(cached: torch.Tensor, recomputed: torch.Tensor) -> float:
    scale = float(recomputed.abs().max())
    return float((cached - recomputed).abs().max()) / scale if scale else 0.0


def compute(runtime, prompt: str, steps: int) -> KVCacheContents:
    shape = runtime.smollm2.shape
    layers = range(shape.n_layers)
    wanted = {f"blocks.{layer}.attn.{name}" for layer in layers for name in ("q", "k", "v")}
    ids, truncation, records = runtime.generate(prompt, steps, names_filter=lambda name: name in wanted)
    tokenizer = runtime.smollm2.tokenizer

    key_shapes, agree, held, query_rows = [], True, [], []
    for step in records:
        cached = [(step.activations[f"blocks.{layer}.attn.k"], step.activations[f"blocks.{layer}.attn.v"])
                  for layer in layers]
        first = tuple(cached[0][0].shape)
        agree = agree and all(tuple(k.shape) == first == tuple(v.shape) for k, v in cached)
        key_shapes.append(first)
        held.append(sum(k.numel() + v.numel() for k, v in cached))
        query_rows.append(int(step.activations["blocks.0.attn.q"].shape[1]))

    # The cache after the last step holds the prompt and every generated token but the last (never fed back).
    cached_ids = ids + [step.token_id for step in records[:-1]]
    text = tokenizer.decode(cached_ids, clean_up_tokenization_spaces=False)
    full = runtime.trace(text, names_filter=lambda name: name.endswith((".attn.k", ".attn.v")),
                         max_tokens=len(cached_ids))
    same = 0  # the recomputation reads the same tokens up to here (re-tokenizing text can merge tokens)
    while same < min(len(cached_ids), full.n_tokens) and cached_ids[same] == full.token_ids[same]:
        same += 1
    last = records[-1].activations
    key_diff = [_relative_diff(last[f"blocks.{layer}.attn.k"][:, :same], full[f"blocks.{layer}.attn.k"][:, :same])
                for layer in layers]
    value_diff = [_relative_diff(last[f"blocks.{layer}.attn.v"][:, :same], full[f"blocks.{layer}.attn.v"][:, :same])
                  for layer in layers]
    config = runtime.smollm2.model.config
    return KVCacheContents(
        truncation=truncation.message if truncation else None,
        prompt_tokens=[tokenizer.decode([i]) for i in ids],
        generated=[step.token for step in records],
        n_layers=shape.n_layers,
        n_heads=shape.n_heads,
        n_kv_heads=shape.n_kv_heads,
        d_head=shape.d_head,
        bytes_per_number=last["blocks.0.attn.k"].element_size(),
        context_length=config.max_position_embeddings,
        cache_lengths=[step.cache_length for step in records],
        key_shapes=key_shapes,
        shapes_agree=agree,
        numbers_held=held,
        query_rows=query_rows,
        compared_positions=same,
        generated_compared=max(0, same - len(ids)),
        key_diff=np.array(key_diff),
        value_diff=np.array(value_diff),
        bound=np.array([recompute_bound(layer, config, len(cached_ids)) for layer in layers]),
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
    """Per layer: cached vs recomputed, relative difference on a log scale, under the float32 bound."""
    rows = []
    for layer in range(result.n_layers):
        for part, values in (("keys", result.key_diff), ("values", result.value_diff)):
            value = float(values[layer])
            rows.append({"layer": layer, "what": part, "difference": max(value, ZERO_AT), "exact": value})
        rows.append({"layer": layer, "what": "float32 bound", "difference": float(result.bound[layer]),
                     "exact": float(result.bound[layer])})
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
        f"entry, under the bound of {float(result.bound.min()):.0e} to {float(result.bound.max()):.0e}."
    )


def headline(result: KVCacheContents) -> list[tuple[str, str]]:
    worst = max(float(result.key_diff.max()), float(result.value_diff.max()))
    return [
        ("Cache per token", f"{result.numbers_per_token:,} floats = {result.bytes_per_token:,} bytes"),
        (f"Cache after step {len(result.generated)}", _size(result.cache_lengths[-1] * result.bytes_per_token)),
        ("Queries kept", "0"),
        ("Cached vs recomputed (relative)", f"{worst:.0e}"),
    ]


def status(result: KVCacheContents) -> tuple[bool, str]:
    if result.sizes_match and result.only_new_queries and result.matches_recomputation:
        return True, "The cache holds exactly the past keys and values, no queries, equal to a recomputation."
    return False, "The cache did not hold what is described here: please report this."


def details(result: KVCacheContents) -> str:
    return (
        "$$\\text{cache per token} = 2 \\times L \\times H_{kv} \\times d_{head} = 2 \\times "
        f"{result.n_layers} \\times {result.n_kv_heads} \\times {result.d_head} = {result.numbers_per_token}$$\n\n"
        "```python\n"
        f"ids, _, steps = runtime.generate(prompt, {len(result.generated)}, names_filter=...)\n"
        f"steps[-1].activations['blocks.0.attn.k'].shape   # {list(result.key_shapes[-1])}: the cache of layer 0\n"
        f"steps[-1].activations['blocks.0.attn.q'].shape   # [{result.n_heads}, {result.query_rows[-1]}, "
        f"{result.d_head}]: only the new token\n"
        "full = runtime.trace(text_of_the_same_tokens)      # no cache: every key again\n"
        "```\n\n"
        "The float32 bound per layer is a first-order worst case: each inner product of length n on the path "
        "from the embedding to that layer's key may round by n·EPS of its terms' size (Higham 2002, §3.1), "
        f"summed over the blocks before it (EPS = {FLOAT32_EPS:.2e})."
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
