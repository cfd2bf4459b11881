"""Fixed depth: every prompt runs all of the model's layers, each exactly once.

We run two prompts (say, an easy one and an ambiguous one) through SmolLM2 and count
how often each block's output hook fired: once per layer, for all 30 layers, whatever
the prompt. The same holds for MiniLM's 6 layers. Nothing in the forward pass tests for
"convergence": we measure how much each layer changes the residual stream (relative
update and cosine between consecutive states, averaged over tokens except position 0,
which carries a huge activation from block 11 on) and show that the amount of change
differs between prompts, while the number of layers that run does not. The parameter
count per layer shows that depth is an architectural hyperparameter.
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
from kqv_demo.runtime import MINILM
from kqv_demo.markup import literal


@dataclass(frozen=True)
class FixedDepth:
    truncation: str | None
    prompts: list[str]
    n_tokens: list[int]
    n_layers: int  # config.num_hidden_layers of SmolLM2
    blocks_run: list[int]  # per prompt: how many times a block's output hook fired in one forward pass
    distinct_layers: list[int]  # per prompt: how many different blocks fired
    calls_per_layer: np.ndarray  # [prompts, layers] firings of blocks.{L}.resid_post
    hidden_states: list[int]  # per prompt: embedding output + one state per block that ran
    relative_update: np.ndarray  # [prompts, layers] mean over tokens 1.. of ||post - pre|| / ||pre||
    cosine: np.ndarray  # [prompts, layers] mean over tokens 1.. of cos(pre, post)
    minilm_layers: int  # config.num_hidden_layers of all-MiniLM-L6-v2
    minilm_blocks_run: list[int]  # per prompt
    params_per_layer: int  # SmolLM2 weights in one decoder layer
    params_in_layers: int  # in all decoder layers
    embedding_params: int  # the tied token-embedding matrix
    total_params: int

    def layer_numbers(self) -> list[int]:
        """Layers counted from 0, as in the hook names `blocks.{L}` and the app's layer settings."""
        return list(range(self.n_layers))


def _count_blocks(calls: dict[str, int], n_layers: int) -> tuple[int, int, list[int]]:
    per_layer = [calls.get(f"blocks.{layer}.resid_post", 0) for layer in range(n_layers)]
    # Any block hook that fired, even beyond the config's count, would show up here.
    outputs = {name: count for name, count in calls.items()
               if name.startswith("blocks.") and name.endswith(".resid_post")}
    return sum(outputs.values()), len(outputs), per_layer


def _layer_changes(trace, n_layers: int) -> tuple[np.ndarray, np.ndarray]:
    updates, cosines = [], []
    for layer in range(n_layers):
        # Position 0 is left out: from block 11 on it carries a huge activation.
        pre = trace[f"blocks.{layer}.resid_pre"][1:]
        post = trace[f"blocks.{layer}.resid_post"][1:]
        updates.append(float(((post - pre).norm(dim=-1) / pre.norm(dim=-1)).mean()))
        cosines.append(float(torch.nn.functional.cosine_similarity(pre, post, dim=-1).mean()))
    return np.array(updates), np.array(cosines)


def compute(runtime, prompt: str, other: str) -> FixedDepth:
    n_layers = runtime.shape().n_layers
    keep = lambda name: name.endswith(".resid_pre") or name.endswith(".resid_post")  # noqa: E731
    traces = runtime.trace_batch([prompt, other], names_filter=keep)
    for text, trace in zip((prompt, other), traces):
        if trace.n_tokens < 2:
            raise UserInputError(
                f"{text!r} is a single token; type at least two tokens "
                "(position 0 is left out of the averages)."
            )
    counts = [_count_blocks(trace.calls, n_layers) for trace in traces]
    changes = [_layer_changes(trace, n_layers) for trace in traces]
    minilm_calls = [
        runtime.trace(text, model=MINILM, names_filter=lambda name: False).calls for text in (prompt, other)
    ]
    minilm_layers = runtime.shape(MINILM).n_layers

    shapes = runtime.parameter_shapes()
    sizes = {name: int(np.prod(dims)) for name, dims in shapes.items()}
    per_layer = [
        sum(n for name, n in sizes.items() if name.startswith(f"model.layers.{i}.")) for i in range(n_layers)
    ]
    if len(set(per_layer)) != 1:
        raise RuntimeError(f"SmolLM2's layers have different sizes: {per_layer}")
    total = sum(sizes.values())
    messages = [t.truncation.message for t in traces if t.truncation]
    return FixedDepth(
        truncation=" ".join(messages) or None,
        prompts=[prompt, other],
        n_tokens=[trace.n_tokens for trace in traces],
        n_layers=n_layers,
        blocks_run=[c[0] for c in counts],
        distinct_layers=[c[1] for c in counts],
        calls_per_layer=np.array([c[2] for c in counts]),
        hidden_states=[c[0] + trace.calls.get("blocks.0.resid_pre", 0) for c, trace in zip(counts, traces)],
        relative_update=np.stack([c[0] for c in changes]),
        cosine=np.stack([c[1] for c in changes]),
        minilm_layers=minilm_layers,
        minilm_blocks_run=[_count_blocks(calls, minilm_layers)[0] for calls in minilm_calls],
        params_per_layer=per_layer[0],
        params_in_layers=sum(per_layer),
        embedding_params=sizes["model.embed_tokens.weight"],
        total_params=total,
    )


def _short(text: str, limit: int = 32) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _decades(values: np.ndarray) -> list[float]:
    """Powers of ten from just below the smallest value to just above the largest: the log axis's ticks."""
    low, high = np.floor(np.log10(values.min())), np.ceil(np.log10(values.max()))
    return [float(10.0 ** k) for k in range(int(low), int(max(high, low + 1)) + 1)]


def chart(result: FixedDepth):
    rows = [
        {"layer": layer, "relative update": float(value), "cosine": float(cos),
         "prompt": f"“{_short(prompt)}” ({runs} layers ran)"}
        for prompt, runs, values, cosines in zip(
            result.prompts, result.blocks_run, result.relative_update, result.cosine
        )
        for layer, value, cos in zip(result.layer_numbers(), values, cosines)
    ]
    data = pd.DataFrame(rows)
    groups = list(dict.fromkeys(data["prompt"]))
    decades = _decades(result.relative_update)
    return (
        alt.Chart(data, title="How much each layer changes the hidden state (all layers run for both prompts)")
        .mark_line(point=True)
        .encode(
            x=alt.X("layer:Q", title=f"layer (0 = first of {result.n_layers}; every one ran once)",
                    scale=alt.Scale(domain=[-0.5, result.n_layers - 0.5], nice=False),
                    axis=alt.Axis(values=list(range(0, result.n_layers, 5)) + [result.n_layers - 1])),
            y=alt.Y("relative update:Q", scale=alt.Scale(type="log", domain=[decades[0], decades[-1]], nice=False),
                    axis=alt.Axis(values=decades, tickCount=len(decades), format="~g", labelFlush=False),
                    title="‖update‖ / ‖input‖ (log scale, token 0 excluded)"),
            color=alt.Color("prompt:N", sort=groups, scale=charts.palette(len(groups)), title=None,
                            legend=alt.Legend(orient="top", labelLimit=400)),
            tooltip=["layer", "prompt", alt.Tooltip("relative update:Q", format=".3f"),
                     alt.Tooltip("cosine:Q", format=".3f")],
        )
        .properties(width=560, height=260)
    )


def _middle(result: FixedDepth) -> tuple[float, float]:
    """Smallest and largest relative update over layers 3-19, both prompts."""
    middle = result.relative_update[:, 3:20]
    return float(middle.min()), float(middle.max())


def explain(result: FixedDepth) -> str:
    a, b = (f"“{literal(_short(p, 40))}”" for p in result.prompts)
    last = result.relative_update[:, -1]
    low, high = _middle(result)
    # Layers 0 and 1 start from the small token embeddings, so their relative updates are large.
    peak = [int(np.argmax(row[2:])) + 2 for row in result.relative_update]
    where = f"{peak[0]} for both" if peak[0] == peak[1] else f"{peak[0]} and {peak[1]}"
    return (
        f"Both prompts went through all {result.n_layers} of SmolLM2's layers, each exactly once: "
        f"{result.blocks_run[0]} block runs for {a} ({result.n_tokens[0]} tokens) and "
        f"{result.blocks_run[1]} for {b} ({result.n_tokens[1]} tokens). MiniLM, on the same prompts, ran "
        f"{result.minilm_blocks_run[0]} and {result.minilm_blocks_run[1]} blocks: its "
        f"{result.minilm_layers} layers. The lines show how much each layer "
        "changed the hidden states (update size divided by the input's size, tokens after the first). The "
        f"amounts differ between prompts, yet nothing checks them: there is no convergence test. Layers 3-19 "
        f"change the state by {low:.2f}-{high:.2f} of its size; the last layer by {last[0]:.2f} and "
        f"{last[1]:.2f}; "
        f"from layer 2 on the biggest change is at layer {where}. The depth is a design choice: "
        f"each layer holds {result.params_per_layer:,} weights."
    )


def headline(result: FixedDepth) -> list[tuple[str, str]]:
    return [
        ("Layers run (prompt 1 / prompt 2)", f"{result.blocks_run[0]} / {result.blocks_run[1]}"),
        ("Hidden states per prompt", " / ".join(map(str, result.hidden_states))),
        ("Last layer's relative update", " / ".join(f"{v:.2f}" for v in result.relative_update[:, -1])),
        ("Weights per layer", f"{result.params_per_layer:,}"),
    ]


def status(result: FixedDepth) -> tuple[bool, str]:
    ok = (
        result.blocks_run == [result.n_layers] * 2
        and result.distinct_layers == [result.n_layers] * 2
        and (result.calls_per_layer == 1).all()
    )
    if ok:
        return True, f"Both prompts ran all {result.n_layers} layers, each once."
    return False, "The layer count differed between prompts: please report this."


def details(result: FixedDepth) -> str:
    return (
        "We count how often each block's output hook (`blocks.{L}.resid_post`) fired during one forward "
        "pass (`trace.calls`). The relative update of layer L is ‖out_L − in_L‖ / ‖in_L‖ for each "
        "token, where in_L is layer L's input (`blocks.{L}.resid_pre`), averaged over tokens 1 … T−1 "
        "(layer 0's update is "
        "large because the token embeddings it starts from are small); token 0 is left out "
        "because from layer 11's output on (block index, from 0) it carries an activation "
        "tens of thousands in size that would dominate any average. Parameters: "
        f"{result.n_layers} layers × {result.params_per_layer:,} = {result.params_in_layers:,}, "
        "plus the tied "
        f"embedding ({result.embedding_params:,}) and the final norm: {result.total_params:,} in all."
    )


DEMO = Demo(
    id="fixed-depth",
    title="Every prompt runs all 30 layers, once",
    summary=(
        "An easy prompt and an ambiguous one both pass through all of SmolLM2's 30 layers, each exactly "
        "once. How much each layer changes the hidden state differs between prompts, but no test of "
        "convergence exists: depth is fixed by the architecture, chosen before training."
    ),
    default_prompt="The capital of France is",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    prompt_label="First prompt (e.g. an easy one)",
    params=(Param("other", "text", "The bank was", "Second prompt (e.g. an ambiguous one)"),),
)
