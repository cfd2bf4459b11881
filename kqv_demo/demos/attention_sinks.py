"""Attention maps are weak explanations: most of SmolLM2's heads stare at the first token.

For two prompts we measure, for each of SmolLM2's 30 × 9 = 270 heads, the attention weight
that the tokens (query positions 1 and later; token 0 can only read itself) put on token 0,
averaged over those tokens. In most heads it is more than half of all the weight, whatever
the first token is: an "attention sink" (Xiao et al. 2024), a place to park attention when a
head has nothing to do. Which heads sink also changes from prompt to prompt.

The first token's hidden state also becomes enormous after block 11 (counting from 0), far larger than
any other token's. A heatmap of raw weights would therefore "explain" most heads as reading a
word like "The": attention weights show where weight goes, not why the model answers as it does.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
import torch

from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param
from kqv_demo.errors import UserInputError
from kqv_demo.trace import token_display
from kqv_demo.markup import literal

MASSIVE_RATIO = 10.0
"""Token 0 counts as a massive activation when its norm is this many times the median of the others."""


@dataclass(frozen=True)
class AttentionSinks:
    truncation: str | None
    prompt_a: str
    prompt_b: str
    first_token_a: str
    first_token_b: str
    tokens_a: int
    tokens_b: int
    threshold: float
    sink_weight_a: np.ndarray  # [layers, heads] mean weight on token 0 over query positions >= 1
    sink_weight_b: np.ndarray
    norm_token0: np.ndarray  # [layers] norm of token 0's residual state after each block (prompt A)
    norm_others_median: np.ndarray  # [layers] median norm of the other tokens (prompt A)

    @property
    def n_heads(self) -> int:
        return self.sink_weight_a.size

    @property
    def sinks_a(self) -> np.ndarray:
        return self.sink_weight_a > self.threshold

    @property
    def sinks_b(self) -> np.ndarray:
        return self.sink_weight_b > self.threshold

    @property
    def count_a(self) -> int:
        return int(self.sinks_a.sum())

    @property
    def count_b(self) -> int:
        return int(self.sinks_b.sum())

    @property
    def count_both(self) -> int:
        return int((self.sinks_a & self.sinks_b).sum())

    @property
    def count_either(self) -> int:
        return int((self.sinks_a | self.sinks_b).sum())

    @property
    def norm_ratio(self) -> np.ndarray:
        return self.norm_token0 / self.norm_others_median

    @property
    def massive_layers(self) -> list[int]:
        """Layers after which token 0's norm is more than MASSIVE_RATIO × the others' median."""
        return [int(layer) for layer in np.flatnonzero(self.norm_ratio > MASSIVE_RATIO)]


def _sink_weights(trace, n_layers: int) -> torch.Tensor:
    # pattern[h, i, 0]: weight query i puts on token 0; row 0 is always 1 (it sees only itself)
    return torch.stack([trace[f"blocks.{layer}.attn.pattern"][:, 1:, 0].mean(dim=-1) for layer in range(n_layers)])


def compute(runtime, prompt: str, other: str, threshold: float = 0.5) -> AttentionSinks:
    keep_a = lambda name: name.endswith(".attn.pattern") or name.endswith(".resid_post")  # noqa: E731
    trace_a = runtime.trace(prompt, names_filter=keep_a)
    trace_b = runtime.trace(other, names_filter=lambda name: name.endswith(".attn.pattern"))
    for trace, which in ((trace_a, "first"), (trace_b, "second")):
        if trace.n_tokens < 2:
            raise UserInputError(
                f"The {which} prompt is a single token: type at least two words, so that some token "
                "can choose between the first token and another one."
            )
    n_layers = trace_a.model.n_layers
    norms = torch.stack([trace_a[f"blocks.{layer}.resid_post"].norm(dim=-1) for layer in range(n_layers)])
    return AttentionSinks(
        truncation=trace_a.notice,
        prompt_a=prompt,
        prompt_b=other,
        first_token_a=trace_a.tokens[0],
        first_token_b=trace_b.tokens[0],
        tokens_a=trace_a.n_tokens,
        tokens_b=trace_b.n_tokens,
        threshold=threshold,
        sink_weight_a=_sink_weights(trace_a, n_layers).numpy().copy(),
        sink_weight_b=_sink_weights(trace_b, n_layers).numpy().copy(),
        norm_token0=norms[:, 0].numpy().copy(),
        norm_others_median=norms[:, 1:].median(dim=-1).values.numpy().copy(),
    )


def _short(text: str, limit: int = 38) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _grid(weights: np.ndarray, threshold: float, title: list[str]) -> alt.LayerChart:
    layers, heads = np.indices(weights.shape)
    data = pd.DataFrame({
        "layer": layers.ravel(), "head": heads.ravel(), "weight on token 0": weights.ravel(),
        "sink": np.where(weights.ravel() > threshold, f"> {threshold:g}", ""),
    })
    base = alt.Chart(data, title=title).encode(
        x=alt.X("head:O", title="head"),
        y=alt.Y("layer:O", title="layer", sort="descending", axis=alt.Axis(labelOverlap=False)),
        tooltip=["layer", "head", alt.Tooltip("weight on token 0:Q", format=".3f")],
    )
    cells = base.mark_rect().encode(
        color=alt.Color("weight on token 0:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1]),
                        title="mean weight on token 0"),
    )
    marks = base.transform_filter("datum.sink != ''").mark_point(shape="circle", size=14, filled=True, color="white")
    return (cells + marks).properties(width=190, height=15 * len(weights))  # 15 px: every layer labelled


def chart(result: AttentionSinks):
    grids = alt.hconcat(
        _grid(result.sink_weight_a, result.threshold,
              [f"“{_short(result.prompt_a)}”", f"{result.count_a} of {result.n_heads} heads"]),
        _grid(result.sink_weight_b, result.threshold,
              [f"“{_short(result.prompt_b)}”", f"{result.count_b} of {result.n_heads} heads"]),
    ).resolve_scale(color="shared")
    first = token_display(result.first_token_a)
    rows = [{"layer": layer, "norm": float(value), "token": name}
            for name, values in ((f"token 0 “{first}”", result.norm_token0),
                                 ("median of the other tokens", result.norm_others_median))
            for layer, value in enumerate(values)]
    norms = charts.lines(pd.DataFrame(rows), "layer", "norm", "token",
                         f"Size of the hidden state after each layer: “{_short(result.prompt_a)}”",
                         y_title="norm (log scale)", width=420)
    norms = norms.encode(y=alt.Y("norm:Q", scale=alt.Scale(type="log"), title="norm (log scale)"))
    return alt.vconcat(grids.properties(title=alt.TitleParams(
        f"Heads whose tokens put more than {result.threshold:.0%} of their weight on token 0 (white dots)",
        anchor="start")), norms)


def _norm_text(result: AttentionSinks) -> str:
    layers = result.massive_layers
    if not layers:
        return "In this prompt token 0's hidden state never grows far beyond the others'."
    first, peak = layers[0], int(np.argmax(result.norm_ratio))
    span = (f"after layers {first}–{layers[-1]}" if len(layers) == layers[-1] - first + 1
            else f"after {len(layers)} layers from layer {first} on")
    return (
        f"Token 0's hidden state is also huge {span}: norm {result.norm_token0[first]:,.0f} after layer {first} "
        f"against a median of {result.norm_others_median[first]:,.0f} for the other tokens "
        f"(at most {result.norm_ratio[peak]:.0f} times larger, after layer {peak})."
    )


def _first_tokens(result: AttentionSinks) -> str:
    a, b = literal(result.first_token_a.strip()), literal(result.first_token_b.strip())
    return f"“{a}” in both prompts" if a == b else f"“{a}” and “{b}”"


def explain(result: AttentionSinks) -> str:
    return (
        f"Each cell is one of SmolLM2's {result.n_heads} heads: how much weight the tokens after the first put "
        f"on token 0, on average. In the first prompt {result.count_a} heads ({result.count_a / result.n_heads:.0%}) "
        f"put more than {result.threshold:.0%} there, in the second {result.count_b} "
        f"({result.count_b / result.n_heads:.0%}); only {result.count_both} do so in both. Token 0 is "
        f"{_first_tokens(result)}: whatever comes first, these heads park their attention on it "
        f"(an attention sink). {_norm_text(result)} So a bright cell in an "
        "attention map says where the weight went, not what the model used it for, let alone how it reasoned."
    )


def headline(result: AttentionSinks) -> list[tuple[str, str]]:
    layers = result.massive_layers
    return [
        ("Sink heads, first prompt", f"{result.count_a} of {result.n_heads} ({result.count_a / result.n_heads:.0%})"),
        ("Sink heads, second prompt", f"{result.count_b} of {result.n_heads} ({result.count_b / result.n_heads:.0%})"),
        ("Sink heads in both", f"{result.count_both}"),
        ("Token 0 norm / others' median", "—" if not layers
         else f"up to {result.norm_ratio.max():.0f}× (layer {layers[0]} on)"),
    ]


def status(result: AttentionSinks) -> tuple[bool, str]:
    share = min(result.count_a, result.count_b) / result.n_heads
    if share > 1 / 3:
        return True, "In both prompts more than a third of the heads put most of their weight on token 0."
    return False, "In this run fewer than a third of the heads sink into token 0 for one of the prompts."


def details(result: AttentionSinks) -> str:
    return (
        "```python\n"
        "keep = lambda name: name.endswith(('.attn.pattern', '.resid_post'))\n"
        "trace = runtime.trace(prompt, names_filter=keep)\n"
        "# [9] per layer: mean weight of query positions 1, 2, … on token 0\n"
        "sink = [trace[f'blocks.{L}.attn.pattern'][:, 1:, 0].mean(-1) for L in range(30)]\n"
        f"sinks = (torch.stack(sink) > {result.threshold:g}).sum()  # {result.count_a} for the first prompt\n"
        "# token 0 vs the others, after each layer L\n"
        "norms = [trace[f'blocks.{L}.resid_post'].norm(dim=-1) for L in range(30)]\n"
        "```\n\n"
        "Query position 0 is left out of the average: it can only attend to itself, so its weight on "
        "token 0 is always 1."
    )


DEMO = Demo(
    id="attention-sinks",
    reads_sentence=True,
    title="Attention maps are weak explanations",
    summary=(
        "In most of SmolLM2's 270 heads, the tokens put more than half of their attention on the first "
        "token, whatever it is (an attention sink), and which heads do so changes with the prompt. The "
        "first token's hidden state is also enormous from the middle layers on (after block 11)."
    ),
    default_prompt="The cat sat on the mat because it was tired.",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    prompt_label="First prompt",
    params=(
        Param("other", "text", "I went to the bank to deposit money.", "Second prompt"),
        Param("threshold", "float", 0.5, "Share of weight on token 0", low=0.1, high=0.9,
              help="A head counts as a sink when its tokens put more than this share on token 0."),
    ),
)
