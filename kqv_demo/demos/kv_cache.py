"""Step-by-step generation with the KV cache: one new key and value per token, one query over all of them.

The model writes text one token per forward pass. The first pass reads the whole prompt
and caches the keys and values of its tokens. Every later pass feeds in only the token
chosen in the step before: it adds exactly one key and one value per layer and key/value
head, reuses the cached ones unchanged, and its single query scores every cached key
(weights that sum to 1, none masked, since every cached position is in the past). The
next token is then picked from the probabilities over the vocabulary.

So the cache stores the keys of this context's tokens, not a collection of concept keys,
and the output text is chosen from the vocabulary scores, not retrieved as attention
"values". This refutes the claims that keys are stored concept vectors, that the answer
is the "value", and (in part) that the response is sampled from primed concepts.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from kqv_demo import numerics
from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param, check_layer_head
from kqv_demo.trace import token_display
from kqv_demo.markup import literal


@dataclass(frozen=True)
class KVCacheSteps:
    truncation: str | None
    layer: int
    head: int
    kv_head: int  # the key/value head this query head reads (grouped-query attention)
    n_kv_heads: int
    prompt_tokens: list[str]  # raw token text of the prompt
    generated: list[str]  # one token per step
    probabilities: np.ndarray  # [steps] probability of each chosen token over the vocabulary
    vocabulary_size: int
    query_tokens: list[str]  # the token fed in at each step, whose query is shown
    key_labels: list[str]  # every position that was ever in the cache, e.g. "3 ·values"
    cache_lengths: np.ndarray  # [steps] from the cache itself
    key_lengths: np.ndarray  # [steps] positions in the recorded keys of `layer`
    value_lengths: np.ndarray  # [steps] positions in the recorded values of `layer`
    key_heads: np.ndarray  # [steps] key/value heads in the recorded keys
    query_rows: np.ndarray  # [steps] queries per head in the recorded pattern (1 after the first step)
    prompt_values_shape: tuple[int, ...]  # values of `layer` after step 1: [kv_heads, prompt tokens, d_head]
    weights: np.ndarray  # [steps, positions] the new token's attention weights; NaN beyond the cache
    row_sums: np.ndarray  # [steps]
    row_min: np.ndarray  # [steps] smallest weight on a cached key (> 0: nothing masked)
    weight_on_prompt: np.ndarray  # [steps] total weight on the prompt's tokens
    cached_keys_max_change: float  # max |k_t - k_{t-1}| over positions cached in both steps

    @property
    def n_prompt(self) -> int:
        return len(self.prompt_tokens)

    @property
    def new_keys_per_step(self) -> np.ndarray:
        return np.diff(self.key_lengths)

    @property
    def consistent(self) -> bool:
        """Every fact the demo shows holds for this run."""
        return bool(
            (self.key_lengths == self.cache_lengths).all()
            and (self.value_lengths == self.cache_lengths).all()
            and (self.new_keys_per_step == 1).all()
            and (self.key_heads == self.n_kv_heads).all()
            and all(abs(total - 1) <= numerics.sums_to_one_noise(n)
                    for total, n in zip(self.row_sums, self.cache_lengths))
            and (self.row_min > 0).all()
            and self.cached_keys_max_change == 0.0  # exact on any CPU: the cache keeps copies, nothing recomputes
        )


def compute(runtime, prompt: str, steps: int, layer: int, head: int) -> KVCacheSteps:
    shape = runtime.shape()
    check_layer_head(shape, layer, head)
    kv_head = head // (shape.n_heads // shape.n_kv_heads)
    prefix = f"blocks.{layer}.attn."
    wanted = {prefix + "pattern", prefix + "rot_k", prefix + "v"}
    ids, truncation, records = runtime.generate(prompt, steps, names_filter=lambda name: name in wanted)

    prompt_tokens = runtime.token_texts(ids)
    generated = [step.token for step in records]
    cached_tokens = prompt_tokens + generated[:-1]  # the last choice is never fed back in
    longest = len(prompt_tokens) + len(records) - 1
    weights = np.full((len(records), longest), np.nan)
    rows, key_lengths, value_lengths, key_heads, query_rows = [], [], [], [], []
    change, previous = 0.0, None
    for index, step in enumerate(records):
        keys, values = step.activations[prefix + "rot_k"], step.activations[prefix + "v"]
        pattern = step.activations[prefix + "pattern"]  # [heads, queries, cached keys]
        row = pattern[head, -1].numpy()
        weights[index, : len(row)] = row
        rows.append(row)
        key_lengths.append(keys.shape[1])
        value_lengths.append(values.shape[1])
        key_heads.append(keys.shape[0])
        query_rows.append(pattern.shape[1])
        if previous is not None:
            change = max(change, float((keys[:, : previous.shape[1]] - previous).abs().max()))
        previous = keys
    return KVCacheSteps(
        truncation=truncation.message if truncation else None,
        layer=layer,
        head=head,
        kv_head=kv_head,
        n_kv_heads=shape.n_kv_heads,
        prompt_tokens=prompt_tokens,
        generated=generated,
        probabilities=np.array([step.probability for step in records]),
        vocabulary_size=shape.vocab_size,
        query_tokens=[prompt_tokens[-1], *generated[:-1]],
        key_labels=[f"{i} {token_display(token)}" for i, token in enumerate(cached_tokens)],
        cache_lengths=np.array([step.cache_length for step in records]),
        key_lengths=np.array(key_lengths),
        value_lengths=np.array(value_lengths),
        key_heads=np.array(key_heads),
        query_rows=np.array(query_rows),
        prompt_values_shape=tuple(records[0].activations[prefix + "v"].shape),
        weights=weights,
        row_sums=np.array([row.sum() for row in rows]),
        row_min=np.array([row.min() for row in rows]),
        weight_on_prompt=np.array([row[: len(prompt_tokens)].sum() for row in rows]),
        cached_keys_max_change=change,
    )


def _step_labels(result: KVCacheSteps) -> list[str]:
    return [
        f"{i + 1}: {token_display(query)} → {token_display(chosen)} ({length} keys)"
        for i, (query, chosen, length) in enumerate(zip(result.query_tokens, result.generated, result.cache_lengths))
    ]


def chart(result: KVCacheSteps) -> alt.Chart:
    """Step × key position heatmap of the new token's attention; positions not yet cached stay empty."""
    labels = _step_labels(result)
    rows = [
        {
            "step": labels[step],
            "key": result.key_labels[position],
            "weight": float(result.weights[step, position]),
            "part": "prompt" if position < result.n_prompt else "generated",
            "cache length": int(result.cache_lengths[step]),
        }
        for step in range(len(labels))
        for position in range(len(result.key_labels))
        if not np.isnan(result.weights[step, position])
    ]
    # Row labels (~6 px per character) and the key axis share ~800 px; a -45° key label needs 17 px.
    keys = len(result.key_labels)
    width = max(200, min(34 * keys, 740 - 6 * max(map(len, labels))))
    return (
        alt.Chart(pd.DataFrame(rows), title=alt.TitleParams(
            f"Each step's new query over the cached keys (layer {result.layer}, head {result.head})",
            subtitle="Rows: step: token fed in → token chosen (keys cached). Empty cells: not in the cache yet.",
        ))
        .mark_rect()
        .encode(
            x=alt.X("key:N", sort=result.key_labels, title="cached key (position and token)",
                    axis=alt.Axis(labelAngle=-45, labelOverlap=charts.label_overlap(width, keys, 17))),
            y=alt.Y("step:N", sort=labels, title=None, axis=alt.Axis(labelLimit=0)),
            color=alt.Color("weight:Q", scale=alt.Scale(scheme="viridis"), title="attention weight",
                            legend=alt.Legend(orient="top")),
            tooltip=["step", "key", "part", "cache length", alt.Tooltip("weight:Q", format=".4f")],
        )
        .properties(width=width, height=max(120, 30 * len(labels)))
    )


def explain(result: KVCacheSteps) -> str:
    steps = len(result.generated)
    later = (
        f"Each of the {steps - 1} later steps feeds in only the token chosen before it: it adds exactly one key "
        f"and one value (cache {', '.join(str(n) for n in result.cache_lengths[1:4])}"
        f"{', …' if steps > 4 else ''}), and the keys already cached are reused unchanged "
        f"(largest change {result.cached_keys_max_change:g}); the prompt gets "
        f"{result.weight_on_prompt[1:].min():.0%}–{result.weight_on_prompt[1:].max():.0%} of the new query's weight. "
        if steps > 1
        else ""
    )
    sums = float(np.abs(result.row_sums - 1).max())
    text = literal("".join(token_display(token) for token in result.generated))  # whole: a URL spans tokens
    return (
        f"Step 1 reads your {result.n_prompt} prompt tokens at once and caches one key and one value per token "
        f"in each of the {result.n_kv_heads} key/value heads of every layer; row 1 is its last token's query. {later}"
        f"Each row is one query of head {result.head} scoring **all** cached keys: every weight is above zero "
        f"(smallest {result.row_min.min():.1e}) and each row sums to 1 (error ≤ {sums:.0e}). The cache holds "
        f"exactly this context's keys, nothing else. The tokens “{text}” were each picked from probabilities "
        f"over all {result.vocabulary_size:,} vocabulary tokens, not read out of the values."
    )


def headline(result: KVCacheSteps) -> list[tuple[str, str]]:
    return [
        ("Generated", literal("".join(token_display(t) for t in result.generated))),
        ("Cache length by step", f"{int(result.cache_lengths[0])} → {int(result.cache_lengths[-1])}"),
        ("New keys per step (after step 1)",
         ", ".join(str(n) for n in sorted(set(result.new_keys_per_step.tolist()))) or "–"),
        ("Smallest weight on a cached key", f"{result.row_min.min():.1e}"),
    ]


def status(result: KVCacheSteps) -> tuple[bool, str]:
    if result.consistent:
        return True, "One new key and value per step; each new query scores every cached key."
    return False, "The cache did not behave as described in this run: please report this."


def details(result: KVCacheSteps) -> str:
    return (
        "```python\n"
        "# greedy, with the KV cache\n"
        f"ids, _, steps = runtime.generate(prompt, {len(result.generated)}, names_filter=...)\n"
        f"k = steps[t].activations['blocks.{result.layer}.attn.rot_k']     "
        f"# [{result.n_kv_heads}, cache length, 64]\n"
        f"row = steps[t].activations['blocks.{result.layer}.attn.pattern'][{result.head}, -1]  # [cache length]\n"
        "```\n\n"
        "With a cache, the attention call of a step receives the keys and values of **all** cached "
        "positions plus the new one, but only the new token's query."
    )


DEMO = Demo(
    id="kv-cache-steps",
    title="Step-by-step generation with the KV cache",
    summary=(
        "Generate a few tokens and watch the KV cache: every step adds one key and one value per layer "
        "and key/value head, and the new token's single query scores every cached key. The cache holds "
        "this context's keys only; each word is picked from probabilities over the vocabulary."
    ),
    default_prompt="The keys and values of earlier tokens are",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    prompt_label="Text to continue",
    params=(
        Param("steps", "int", 4, "Tokens to generate", low=1, high=20),
        Param("layer", "layer", 11, "Layer"),
        Param("head", "head", 8, "Query head"),
    ),
)
