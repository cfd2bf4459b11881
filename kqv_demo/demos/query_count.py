"""One query per token, per head, per layer: there is no single "prompt query vector".

We run the learner's prompt through SmolLM2 once and count the query vectors the model
actually computed, read from the recorded shapes of `blocks.{L}.attn.q` ([heads, T, d_head]
in every layer). A prompt of T tokens gives T × layers × heads queries of d_head numbers
each, plus T × layers × kv_heads keys and as many values (grouped-query attention). This
refutes "the prompt is encoded as one query vector": every token has its own query in every
head of every layer, computed from that token's hidden state, and the prompt's own tokens
supply the keys and values that those queries score. The chart shows the length of each
query (layer × token) so the learner sees them as separate vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param
from kqv_demo.trace import token_display
from kqv_demo.markup import literal

KINDS = ("q", "k", "v")
CHART_TOKENS = 160  # layers × tokens cells stay under Altair's 5,000-row limit


@dataclass(frozen=True)
class QueryCount:
    truncation: str | None
    tokens: list[str]  # axis labels, one per position
    n_tokens: int
    n_layers: int  # layers that recorded queries (every layer of the model)
    n_heads: int
    n_kv_heads: int
    d_head: int
    queries: int  # query vectors computed in this forward pass, counted from the recorded shapes
    keys: int
    values: int
    query_shape: tuple[int, ...]  # recorded shape of blocks.0.attn.q: [heads, T, d_head]
    key_shape: tuple[int, ...]
    value_shape: tuple[int, ...]
    query_width: int  # numbers per token for all query heads together (heads × d_head)
    key_width: int  # numbers per token for all key heads together (kv_heads × d_head)
    value_width: int
    projection_shapes: list[tuple[int, ...]]  # layer 0's W_Q, W_K, W_V as stored: [out, in]
    head: int
    averaged: bool  # the chart shows the mean over heads instead of one head
    norms: np.ndarray  # [layers, heads, T] length of every query vector
    shown: np.ndarray  # [layers, T] what the chart shows (one head or the mean over heads)


def compute(runtime, prompt: str, head: int = 0, average: bool = False) -> QueryCount:
    """Trace `prompt` once, recording only q, k and v, and count what the model computed."""
    wanted = tuple(f".attn.{kind}" for kind in KINDS)
    trace = runtime.trace(prompt, names_filter=lambda name: name.endswith(wanted))
    shape = trace.model
    layers = sorted(
        {int(name.split(".")[1]) for name in trace.activations if name.endswith(".attn.q")}
    )
    counts = {kind: 0 for kind in KINDS}
    for layer in layers:
        for kind in KINDS:
            heads, tokens, _ = trace[f"blocks.{layer}.attn.{kind}"].shape
            counts[kind] += heads * tokens  # one vector per (head, token)
    norms = np.stack([trace[f"blocks.{layer}.attn.q"].norm(dim=-1).numpy() for layer in layers])
    shown = norms.mean(axis=1) if average else norms[:, head]
    q0, k0, v0 = (tuple(trace[f"blocks.0.attn.{kind}"].shape) for kind in KINDS)
    parameters = runtime.parameter_shapes()
    projections = [parameters[f"model.layers.0.self_attn.{kind}_proj.weight"] for kind in KINDS]
    return QueryCount(
        truncation=trace.notice,
        tokens=trace.token_labels(),
        n_tokens=trace.n_tokens,
        n_layers=len(layers),
        n_heads=shape.n_heads,
        n_kv_heads=shape.n_kv_heads,
        d_head=q0[-1],
        queries=counts["q"],
        keys=counts["k"],
        values=counts["v"],
        query_shape=q0,
        key_shape=k0,
        value_shape=v0,
        query_width=q0[0] * q0[-1],
        key_width=k0[0] * k0[-1],
        value_width=v0[0] * v0[-1],
        projection_shapes=projections,
        head=head,
        averaged=average,
        norms=norms,
        shown=shown,
    )


def chart(result: QueryCount) -> alt.Chart:
    """Heatmap: one cell per query vector (layer × token), coloured by its length."""
    shown = min(result.n_tokens, CHART_TOKENS)
    tokens = result.tokens[:shown]
    rows = [
        {"layer": layer, "token": tokens[t], "norm": float(result.shown[layer, t])}
        for layer in range(result.n_layers)
        for t in range(shown)
    ]
    which = f"mean over the {result.n_heads} query heads" if result.averaged else f"query head {result.head}"
    title = f"Length of each token's query vector in every layer ({which})"
    if shown < result.n_tokens:
        title += f", first {shown} of {result.n_tokens} tokens"
    width = max(360, min(660, 40 * shown))  # with the axes and legend, within ~800 px
    return (
        alt.Chart(pd.DataFrame(rows), title=title)
        .mark_rect()
        .encode(
            # Every token and layer gets its label; a -45° token label needs 17 px (thinned beyond ~38 tokens).
            x=alt.X("token:N", sort=tokens, title="prompt token",
                    axis=alt.Axis(labelAngle=-45, labelOverlap=charts.label_overlap(width, shown, 17))),
            y=alt.Y("layer:O", title="layer", sort="ascending", axis=alt.Axis(labelOverlap=False)),
            color=alt.Color("norm:Q", scale=alt.Scale(scheme="viridis"), title="‖q‖"),
            tooltip=["layer", "token", alt.Tooltip("norm:Q", format=".2f")],
        )
        .properties(width=width, height=15 * result.n_layers)
    )


def _first_tokens(result: QueryCount, n: int = 4) -> str:
    shown = [token_display(label.split(" ", 1)[1]) for label in result.tokens[:n]]
    return ", ".join(f"“{literal(token)}”" for token in shown) + (", …" if result.n_tokens > n else "")


def explain(result: QueryCount) -> str:
    which = "the mean over all query heads" if result.averaged else f"query head {result.head}"
    return (
        f"Your prompt is {result.n_tokens} tokens ({_first_tokens(result)}). In one forward pass "
        f"SmolLM2 computed **{result.queries:,} query vectors**: {result.n_tokens} tokens × "
        f"{result.n_layers} layers × {result.n_heads} query heads, each a list of {result.d_head} numbers. "
        "There is no single “prompt query vector”: every token gets its own query in every head of every "
        f"layer. Each cell of the chart is one of those queries ({which}), coloured by its length; they "
        "differ from token to token and from layer to layer. The same tokens also produced "
        f"{result.keys:,} keys and {result.values:,} values ({result.n_kv_heads} key/value heads per "
        "layer), and the queries score exactly these keys, not stored concepts."
    )


def headline(result: QueryCount) -> list[tuple[str, str]]:
    return [
        ("Query vectors", f"{result.queries:,}"),
        ("= tokens × layers × heads", f"{result.n_tokens} × {result.n_layers} × {result.n_heads}"),
        ("Keys / values", f"{result.keys:,} / {result.values:,}"),
        ("Numbers per query", f"{result.d_head}"),
    ]


def status(result: QueryCount) -> tuple[bool, str]:
    expected = result.n_tokens * result.n_layers * result.n_heads
    if result.queries == expected:
        return True, f"{result.queries:,} queries were computed: one per token, per head, per layer."
    return False, f"Counted {result.queries:,} queries, expected {expected:,}: please report this."


def details(result: QueryCount) -> str:
    q, k, v = result.projection_shapes
    return (
        "$$q_i^{(\\ell,h)} = W_Q^{(\\ell,h)}\\,x_i^{(\\ell)}\\quad\\text{for every token } i,"
        " \\text{ layer } \\ell, \\text{ head } h$$\n\n"
        f"Layer 0 stores W_Q as {q[0]}×{q[1]}, W_K as {k[0]}×{k[1]} and W_V as {v[0]}×{v[1]}: per token "
        f"{result.query_width} = {result.n_heads}×{result.d_head} query numbers and {result.key_width} = "
        f"{result.n_kv_heads}×{result.d_head} key (and value) numbers.\n\n"
        "```python\n"
        "wanted = ('.attn.q', '.attn.k', '.attn.v')\n"
        "trace = runtime.trace(prompt, names_filter=lambda n: n.endswith(wanted))\n"
        f"trace['blocks.0.attn.q'].shape   # {list(result.query_shape)} = [heads, tokens, d_head]\n"
        f"trace['blocks.0.attn.k'].shape   # {list(result.key_shape)}\n"
        f"shapes = [trace[f'blocks.{{L}}.attn.q'].shape for L in range({result.n_layers})]\n"
        f"queries = sum(heads * tokens for heads, tokens, _ in shapes)   # {result.queries}\n"
        "```"
    )


DEMO = Demo(
    id="query-count",
    reads_sentence=True,
    title="One query per token, per head, per layer",
    summary=(
        "Count the query vectors SmolLM2 computes for your prompt: one per token in every head of every "
        "layer (tokens × 30 × 9), each 64 numbers long, plus one key and one value per token per "
        "key/value head. There is no single query vector for the whole prompt."
    ),
    default_prompt="The cat sat on the mat.",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    params=(
        Param("head", "head", 0, "Query head to colour by"),
        Param("average", "bool", False, "Average over all heads instead"),
    ),
)
