"""No biases, no concept switches: SmolLM2's MLP neurons are graded and work in crowds.

The dialogue pictures "concept nodes" that a bias switches on or off when the final query
arrives. Two facts from the model: SmolLM2 has no bias parameters at all (its config sets
attention_bias and mlp_bias to false), while MiniLM, a BERT, has bias vectors in every layer;
and the MLP neuron activations in a middle layer of SmolLM2 are graded values, positive and
negative, with the activation mass of every token spread over hundreds of the 1,536 neurons.
The neurons fire in every layer and for every token, not once after attention has "finished",
and the strongest neuron for a word also responds to other words.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
import torch

from kqv_demo.demos.base import Demo, Param
from kqv_demo.demos.charts import OKABE_ITO
from kqv_demo.runtime import MINILM
from kqv_demo.trace import token_display
from kqv_demo.markup import literal


@dataclass(frozen=True)
class NoBiasConcepts:
    truncation: str | None
    smollm2_tensors: int  # named parameter tensors
    smollm2_bias_names: list[str]  # parameters whose name contains "bias": none
    attention_bias: bool  # SmolLM2 config
    mlp_bias: bool
    minilm_bias_names: list[str]
    minilm_bias_values: int  # numbers held in those bias vectors
    layer: int
    tokens: list[str]  # the prompt's tokens as text
    neurons_for_half: np.ndarray  # [T] fewest neurons carrying 50% of the token's |activation| mass
    neurons_for_90: np.ndarray  # [T] ... 90%
    last_activations: np.ndarray  # [d_mlp] the last token's MLP activations at `layer`
    top_neuron: int  # largest |activation| for the last token
    top_neuron_by_token: np.ndarray  # [T] that neuron's activation at every position

    @property
    def d_mlp(self) -> int:
        return len(self.last_activations)

    def share(self, low: float, high: float = np.inf) -> float:
        """Fraction of the last token's neurons with low <= |a| < high."""
        magnitude = np.abs(self.last_activations)
        return float(((magnitude >= low) & (magnitude < high)).mean())

    @property
    def near_zero(self) -> float:
        return self.share(0, 0.01)

    @property
    def above_one(self) -> float:
        return self.share(1.0)

    @property
    def negative(self) -> float:
        return float((self.last_activations < 0).mean())

    @property
    def top_value(self) -> float:
        return float(self.last_activations[self.top_neuron])

    def top_positions(self, n: int = 3) -> list[int]:
        """Positions whose tokens drive the top neuron hardest (in the direction it fires for the last token)."""
        sign = 1.0 if self.top_value >= 0 else -1.0
        return [int(i) for i in np.argsort(-sign * self.top_neuron_by_token, kind="stable")[:n]]


def neurons_for_share(activations: torch.Tensor, share: float) -> torch.Tensor:
    """For each row, the fewest neurons whose |activation| adds up to `share` of the row's total."""
    magnitude = activations.abs().sort(dim=-1, descending=True).values
    cumulative = magnitude.cumsum(dim=-1) / magnitude.sum(dim=-1, keepdim=True)
    return (cumulative < share).sum(dim=-1) + 1


def compute(runtime, prompt: str, layer: int) -> NoBiasConcepts:
    name = f"blocks.{layer}.mlp.post"
    trace = runtime.trace(prompt, names_filter=lambda each: each == name)
    activations = trace[name]  # [T, d_mlp]
    last = activations[-1]
    top = int(last.abs().argmax())
    shape = runtime.shape()
    small_shapes = runtime.parameter_shapes()
    mini_shapes = runtime.parameter_shapes(MINILM)
    mini_biases = [each for each in mini_shapes if "bias" in each]
    return NoBiasConcepts(
        truncation=trace.notice,
        smollm2_tensors=len(small_shapes),
        smollm2_bias_names=[each for each in small_shapes if "bias" in each],
        attention_bias=shape.attention_bias,
        mlp_bias=shape.mlp_bias,
        minilm_bias_names=mini_biases,
        minilm_bias_values=int(sum(np.prod(mini_shapes[each]) for each in mini_biases)),
        layer=layer,
        tokens=list(trace.tokens),
        neurons_for_half=neurons_for_share(activations, 0.5).numpy().copy(),
        neurons_for_90=neurons_for_share(activations, 0.9).numpy().copy(),
        last_activations=last.numpy().copy(),
        top_neuron=top,
        top_neuron_by_token=activations[:, top].numpy().copy(),
    )


def _ticks_through_zero(low: float, high: float, count: int = 10) -> list[float]:
    """About `count` round ticks (steps of 1, 2 or 5 × 10^k) within [low, high], always including 0."""
    raw = max(high - low, 1e-12) / count
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first, last = int(np.ceil(min(low, 0) / step)), int(np.floor(max(high, 0) / step))
    return [round(float(k * step), 10) for k in range(first, last + 1)]


def chart(result: NoBiasConcepts):
    last = token_display(result.tokens[-1].strip())
    values = pd.DataFrame({"activation": result.last_activations})
    ticks = _ticks_through_zero(float(result.last_activations.min()), float(result.last_activations.max()))
    bars = (
        alt.Chart(values, title=alt.TitleParams(
            f"Layer {result.layer}: the {result.d_mlp} MLP activations for “{last}”",
            subtitle=f"dashed line: 0 ({result.negative:.0%} of the neurons are negative)"))
        .mark_bar(color=OKABE_ITO[0])
        .encode(
            # anchor=0: a bin edge at 0, so the bars split exactly into negative and non-negative values.
            x=alt.X("activation:Q", bin=alt.Bin(maxbins=80, anchor=0), title="activation value",
                    axis=alt.Axis(values=ticks, tickCount=len(ticks), format="~g")),
            y=alt.Y("count():Q", title="number of neurons"),
            tooltip=[alt.Tooltip("count():Q", title="neurons")],
        )
    )
    zero = alt.Chart(pd.DataFrame({"activation": [0.0]})).mark_rule(
        strokeDash=[5, 4], strokeWidth=1.5, color=OKABE_ITO[7]
    ).encode(x="activation:Q")
    histogram = (bars + zero).properties(width=310, height=260)
    magnitude = np.sort(np.abs(result.last_activations))[::-1]
    curve = pd.DataFrame({
        "neurons": np.arange(1, len(magnitude) + 1),
        "share": np.cumsum(magnitude) / magnitude.sum(),
    })
    marks = pd.DataFrame({
        "neurons": [int(result.neurons_for_half[-1]), int(result.neurons_for_90[-1])],
        "share": [0.5, 0.9],
        "label": [f"50%: {result.neurons_for_half[-1]} neurons", f"90%: {result.neurons_for_90[-1]} neurons"],
    })
    line = alt.Chart(curve, title="Share of the activation mass, strongest neurons first").mark_line(
        color=OKABE_ITO[0]
    ).encode(
        x=alt.X("neurons:Q", title="number of neurons (largest |activation| first)"),
        y=alt.Y("share:Q", title="share of the total |activation|", axis=alt.Axis(format="%")),
    )
    points = alt.Chart(marks).mark_point(filled=True, size=70, color=OKABE_ITO[3]).encode(x="neurons:Q", y="share:Q")
    labels = alt.Chart(marks).mark_text(align="left", dx=8, dy=10, color=OKABE_ITO[3]).encode(
        x="neurons:Q", y="share:Q", text="label:N"
    )
    return alt.hconcat(histogram, (line + points + labels).properties(width=310, height=260))


def explain(result: NoBiasConcepts) -> str:
    word = literal(result.tokens[-1].strip())
    last = len(result.tokens) - 1
    others = [f"“{literal(result.tokens[i].strip())}” ({result.top_neuron_by_token[i]:.2f})"
              for i in result.top_positions(3) if i != last][:2]
    return (
        f"SmolLM2 has **no bias parameters**: none of its {result.smollm2_tensors} weight tensors is a bias "
        f"(attention_bias and mlp_bias are {str(result.attention_bias).lower()}), so no bias can switch a neuron on. "
        f"MiniLM, a BERT, has {len(result.minilm_bias_names)} bias vectors. The chart shows layer {result.layer}'s "
        f"{result.d_mlp} MLP neurons for the last token, “{word}”: graded values, {result.negative:.0%} of them "
        f"negative. {result.near_zero:.1%} are near zero (|a| < 0.01), {result.share(0.01, 0.1):.0%} lie between "
        f"0.01 and 0.1, {result.share(0.1, 1):.0%} between 0.1 and 1, and {result.above_one:.1%} exceed 1. "
        f"Half of the activation mass needs {result.neurons_for_half[-1]} neurons, 90% needs "
        f"{result.neurons_for_90[-1]}. The strongest, neuron {result.top_neuron} ({result.top_value:.2f}), "
        f"also responds to {' and '.join(others) or 'other tokens'}: a pattern over many neurons, not one concept node."
    )


def headline(result: NoBiasConcepts) -> list[tuple[str, str]]:
    return [
        ("SmolLM2 bias parameters", f"{len(result.smollm2_bias_names)}"),
        ("MiniLM bias vectors", f"{len(result.minilm_bias_names)}"),
        ("Neurons for 50% / 90% of the mass",
         f"{result.neurons_for_half[-1]} / {result.neurons_for_90[-1]} of {result.d_mlp}"),
        ("Near zero (|a| < 0.01)", f"{result.near_zero:.1%}"),
    ]


def status(result: NoBiasConcepts) -> tuple[bool, str]:
    if not result.smollm2_bias_names and result.neurons_for_half[-1] > 10:
        return True, "No biases, and the last token's activation is spread over many graded neurons."
    return False, "In this run the activation is concentrated in a few neurons."


def details(result: NoBiasConcepts) -> str:
    return (
        "```python\n"
        "[n for n in runtime.parameter_shapes() if 'bias' in n]            # []\n"
        f"[n for n in runtime.parameter_shapes('minilm') if 'bias' in n]    # {len(result.minilm_bias_names)} names\n"
        f"a = runtime.trace(prompt)['blocks.{result.layer}.mlp.post'][-1]      # [{result.d_mlp}], input of down_proj\n"
        "share = a.abs().sort(descending=True).values.cumsum(0) / a.abs().sum()\n"
        f"(share < 0.5).sum() + 1                                          # {result.neurons_for_half[-1]}\n"
        "```\n\n"
        "The activation is SiLU(gate · x) × (up · x) with x the RMS-normalised residual state: "
        "no bias term anywhere. MiniLM's bias vectors: " + _bias_summary(result.minilm_bias_names) + "."
    )


def _bias_summary(names: list[str]) -> str:
    """'8 in each of 6 layers (query, ...) plus embeddings.LayerNorm.bias, pooler.dense.bias'."""
    per_layer: dict[str, set[str]] = {}
    outside = []
    for name in names:
        parts = name.split(".")
        if "layer" in parts and parts[parts.index("layer") + 1].isdigit():
            index = parts.index("layer")
            per_layer.setdefault(".".join(parts[index + 2:-1]), set()).add(parts[index + 1])
        else:
            outside.append(name)
    layers = set().union(*per_layer.values()) if per_layer else set()
    inside = f"{len(per_layer)} in each of {len(layers)} layers ({', '.join(per_layer)})" if per_layer else ""
    return "; ".join(filter(None, [inside, ", ".join(outside)]))


DEMO = Demo(
    id="no-bias-concepts",
    reads_sentence=True,
    title="No biases, no concept switches",
    summary=(
        "SmolLM2 has no bias parameters at all, so no bias switches its neurons on or off. Its MLP "
        "neurons take graded positive and negative values, and each token's activation is spread over "
        "hundreds of the 1,536 neurons of a layer: concepts are patterns, not single nodes."
    ),
    default_prompt="The Eiffel Tower is a famous landmark in the city of Paris",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    params=(Param("layer", "layer", 15, "Layer"),),
)
