"""Keys are computed, not stored: the same word gets different keys in different contexts.

For a word that appears in two sentences we read its key, before RoPE, at every layer
of SmolLM2 and compare the two by cosine similarity. At layer 0 the key depends on the
token alone (cosine 1); from layer 1 on it depends on the words to its left. The model
stores only the projection matrices W_K, one per layer, and a forward pass produces
exactly one key per token, per key/value head, per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
import torch

from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param, quoted_for_message
from kqv_demo.errors import UserInputError
from kqv_demo.markup import literal


@dataclass(frozen=True)
class KeysAreComputed:
    truncation: str | None
    word: str
    sentence_a: str
    sentence_b: str
    position_a: int
    position_b: int
    layer: int
    cosine_by_layer: np.ndarray  # [layers, kv_heads] cosine of the word's unrotated keys, A vs B
    keys_in_a: int  # keys produced for sentence A: tokens x kv_heads x layers
    tokens_in_a: int
    n_layers: int
    n_kv_heads: int
    key_weight_shapes: list[tuple[int, ...]]  # one W_K per layer
    vocabulary_tables: list[str]  # parameters with one row per vocabulary token


def _word_position(tokens: list[str], word: str, sentence: str) -> int:
    wanted = word.strip().lower()
    matches = [i for i, token in enumerate(tokens) if token.strip().lower() == wanted]
    if not matches:
        quoted, shown = quoted_for_message(sentence, tokens)
        raise UserInputError(
            f"The word {word.strip()!r} is not a single token of {quoted} (tokens: {shown}). "
            "Pick a word that appears in both sentences."
        )
    return matches[-1]


def compute(runtime, prompt: str, word: str, other: str, layer: int) -> KeysAreComputed:
    keep = lambda name: name.endswith("attn.k")  # noqa: E731
    trace_a = runtime.trace(prompt, names_filter=keep)
    trace_b = runtime.trace(other, names_filter=keep)
    position_a = _word_position(trace_a.tokens, word, prompt)
    position_b = _word_position(trace_b.tokens, word, other)
    shape = trace_a.model
    cosines = []
    for each in range(shape.n_layers):
        key_a = trace_a[f"blocks.{each}.attn.k"][:, position_a]  # [kv_heads, d_head]
        key_b = trace_b[f"blocks.{each}.attn.k"][:, position_b]
        cosines.append(torch.nn.functional.cosine_similarity(key_a, key_b, dim=-1).numpy())
    shapes = runtime.parameter_shapes()
    key_weights = [shapes[f"model.layers.{i}.self_attn.k_proj.weight"] for i in range(shape.n_layers)]
    vocabulary = shape.vocab_size
    tables = [name for name, dims in shapes.items() if vocabulary in dims]
    keys_seen = sum(trace_a[f"blocks.{i}.attn.k"].shape[:2].numel() for i in range(shape.n_layers))
    return KeysAreComputed(
        truncation=trace_a.notice,
        word=trace_a.tokens[position_a],
        sentence_a=prompt,
        sentence_b=other,
        position_a=position_a,
        position_b=position_b,
        layer=layer,
        cosine_by_layer=np.stack(cosines),
        keys_in_a=keys_seen,
        tokens_in_a=trace_a.n_tokens,
        n_layers=shape.n_layers,
        n_kv_heads=shape.n_kv_heads,
        key_weight_shapes=key_weights,
        vocabulary_tables=tables,
    )


def chart(result: KeysAreComputed):
    rows = [
        {"layer": layer, "cosine": float(value), "key/value head": f"head {head}"}
        for layer, values in enumerate(result.cosine_by_layer)
        for head, value in enumerate(values)
    ]
    lines = charts.lines(
        pd.DataFrame(rows), "layer", "cosine", "key/value head",
        f"Cosine between the keys of “{result.word.strip()}” in the two sentences",
        y_title="cosine similarity (1 = same key)",
    ).encode(x=alt.X("layer:Q", title="layer", scale=alt.Scale(domain=[0, result.n_layers - 1], nice=False),
                     # every layer labelled (a quiz question asks about one); thinned only where labels would collide
                     axis=alt.Axis(values=list(range(result.n_layers)), labelOverlap=True)))
    # The chosen layer: a dashed rule, labelled at the foot of the plot (the lines run near the top).
    chosen = alt.Chart(pd.DataFrame({"layer": [result.layer], "label": [f"layer {result.layer}"]}))
    rule = chosen.mark_rule(strokeDash=[5, 4], strokeWidth=1.5, color=charts.OKABE_ITO[7]).encode(x="layer:Q")
    right = result.layer > 0.8 * (result.n_layers - 1)  # near the right edge the label goes left of the rule
    label = chosen.mark_text(
        align="right" if right else "left", dx=-5 if right else 5, baseline="bottom", dy=-4,
        color=charts.OKABE_ITO[7],
    ).encode(x="layer:Q", y=alt.value(lines.height), text="label:N")
    return lines + rule + label


def explain(result: KeysAreComputed) -> str:
    lowest = result.cosine_by_layer[1:].min()
    return (
        f"“{literal(result.word.strip())}” is token {result.position_a} of the first sentence and token "
        f"{result.position_b} of the second. At layer 0 its key depends only on the token itself, so "
        f"the two keys agree (cosine {result.cosine_by_layer[0].min():.3f}). From layer 1 on, the key is "
        "computed from a hidden state that already mixes in the words to its left, so the same word gets "
        f"different keys (lowest cosine {lowest:.2f}). Nothing is looked up: each layer stores only a "
        f"projection matrix W_K of shape {result.key_weight_shapes[0][0]}×{result.key_weight_shapes[0][1]}, "
        f"and the only parameter with one row per vocabulary token is {', '.join(result.vocabulary_tables)}: "
        "token embeddings, not keys. The first sentence's "
        f"{result.tokens_in_a} tokens produced {result.keys_in_a} keys: {result.tokens_in_a} tokens × "
        f"{result.n_kv_heads} key/value heads × {result.n_layers} layers, one per token, computed on the fly."
    )


def headline(result: KeysAreComputed) -> list[tuple[str, str]]:
    return [
        ("Cosine at layer 0", f"{result.cosine_by_layer[0].min():.3f}"),
        (f"Cosine at layer {result.layer}",
         f"{result.cosine_by_layer[result.layer].min():.2f}–{result.cosine_by_layer[result.layer].max():.2f}"),
        ("Keys for your sentence", f"{result.keys_in_a:,}"),
        ("W_K per layer", "×".join(map(str, result.key_weight_shapes[0]))),
    ]


DEMO = Demo(
    id="keys-are-computed",
    title="Keys are computed, not stored",
    summary=(
        "The same word gets a different key in a different context: keys are computed from each "
        "token's hidden state by a learned matrix W_K. There is no stored table of concept keys, and a "
        "prompt of T tokens produces exactly T keys per key/value head per layer."
    ),
    default_prompt="I sat on the river bank",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    prompt_label="First sentence",
    params=(
        Param("other", "text", "I opened a bank account", "Second sentence"),
        Param("word", "text", "bank", "The word to compare"),
        Param("layer", "layer", 10, "Layer to highlight"),
    ),
)
