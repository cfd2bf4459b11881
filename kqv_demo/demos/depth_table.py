"""12 layers is not a standard: depth is a hyperparameter, and it grew with model size.

A small table of published layer counts, each row with its source, next to the two models
loaded here, whose depth is read live from their configs (`num_hidden_layers`) and whose
parameters are counted from the loaded weights. Twelve layers was the depth of BERT-base and
GPT-2 small (2018-2019); large models since have 32 to 126, and even SmolLM2-135M has 30.
The count of SmolLM2's parameters per layer shows that each extra layer adds the same block
of weights: depth is chosen before training, and it is fixed afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from kqv_demo.demos.base import Demo
from kqv_demo.demos.charts import OKABE_ITO
from kqv_demo.runtime import MINILM, SMOLLM2


@dataclass(frozen=True)
class PublishedDepth:
    model: str
    layers: int
    year: int  # of the first public release (arXiv)
    parameters: str  # as the source names the model size
    source: str


PUBLISHED: tuple[PublishedDepth, ...] = (
    PublishedDepth("BERT-base", 12, 2018, "110M",
                   "Devlin et al. 2019, BERT (NAACL), §3: BERT-base has L = 12 layers"),
    PublishedDepth("BERT-large", 24, 2018, "340M",
                   "Devlin et al. 2019, BERT (NAACL), §3: BERT-large has L = 24 layers"),
    PublishedDepth("GPT-2 small", 12, 2019, "117M",
                   "Radford et al. 2019, Language Models are Unsupervised Multitask Learners, Table 2"),
    PublishedDepth("GPT-2 XL", 48, 2019, "1.5B",
                   "Radford et al. 2019, Language Models are Unsupervised Multitask Learners, Table 2"),
    PublishedDepth("GPT-3 175B", 96, 2020, "175B",
                   "Brown et al. 2020, Language Models are Few-Shot Learners (NeurIPS), Table 2.1"),
    PublishedDepth("Llama-2-7B", 32, 2023, "7B",
                   "Touvron et al. 2023, Llama 2 (arXiv:2307.09288), which keeps the LLaMA architecture "
                   "(Touvron et al. 2023, arXiv:2302.13971, Table 2: 32 layers at 7B); also num_hidden_layers "
                   "in the released config"),
    PublishedDepth("Llama-2-70B", 80, 2023, "70B",
                   "Touvron et al. 2023, Llama 2 (arXiv:2307.09288); its Table 1 gives no depth: 80 is "
                   "num_hidden_layers in the released config (meta-llama/Llama-2-70b-hf)"),
    PublishedDepth("Llama-3.1-405B", 126, 2024, "405B",
                   "Dubey et al. 2024, The Llama 3 Herd of Models (arXiv:2407.21783), Table 3"),
)


@dataclass(frozen=True)
class DepthTable:
    models: list[str]
    layers: list[int]
    years: list[int | None]  # of the source; None for the live rows
    parameters: list[str]
    sources: list[str]
    live: list[bool]  # read from a model loaded here
    smollm2_layers: int
    minilm_layers: int
    smollm2_parameters: int  # sum of numel over its named parameters (tied embedding counted once)
    minilm_parameters: int
    smollm2_tied_embeddings: bool
    smollm2_embedding_parameters: int
    smollm2_attention_per_layer: int
    smollm2_mlp_per_layer: int
    smollm2_norm_per_layer: int

    @property
    def smollm2_per_layer(self) -> int:
        return self.smollm2_attention_per_layer + self.smollm2_mlp_per_layer + self.smollm2_norm_per_layer

    @property
    def with_twelve(self) -> list[str]:
        return [model for model, layers in zip(self.models, self.layers) if layers == 12]


def _numel(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _layer_counts(shapes: dict[str, tuple[int, ...]], layer: int = 0) -> tuple[int, int, int]:
    prefix = f"model.layers.{layer}."
    attention = sum(_numel(s) for n, s in shapes.items() if n.startswith(prefix + "self_attn."))
    mlp = sum(_numel(s) for n, s in shapes.items() if n.startswith(prefix + "mlp."))
    norms = sum(_numel(s) for n, s in shapes.items() if n.startswith(prefix) and "norm" in n)
    return attention, mlp, norms


def _size(count: int) -> str:
    return f"{count / 1e6:.0f}M"


def compute(runtime, prompt: str = "") -> DepthTable:
    """`prompt` is unused: the table does not depend on any input."""
    small, mini = runtime.shape(SMOLLM2), runtime.shape(MINILM)
    small_shapes = runtime.parameter_shapes(SMOLLM2)  # named_parameters: a tied weight appears once
    mini_shapes = runtime.parameter_shapes(MINILM)
    small_total = sum(_numel(s) for s in small_shapes.values())
    mini_total = sum(_numel(s) for s in mini_shapes.values())
    attention, mlp, norms = _layer_counts(small_shapes)
    rows = [(row.model, row.layers, row.year, row.parameters, row.source, False) for row in PUBLISHED] + [
        ("SmolLM2-135M (loaded here)", small.n_layers, None, _size(small_total),
         "config.num_hidden_layers of the loaded model", True),
        ("all-MiniLM-L6-v2 (loaded here)", mini.n_layers, None, _size(mini_total),
         "config.num_hidden_layers of the loaded model", True),
    ]
    models, layers, years, parameters, sources, live = (list(column) for column in zip(*rows))
    return DepthTable(
        models=models,
        layers=layers,
        years=years,
        parameters=parameters,
        sources=sources,
        live=live,
        smollm2_layers=small.n_layers,
        minilm_layers=mini.n_layers,
        smollm2_parameters=small_total,
        minilm_parameters=mini_total,
        smollm2_tied_embeddings=small.tied_embeddings,
        smollm2_embedding_parameters=_numel(small_shapes["model.embed_tokens.weight"]),
        smollm2_attention_per_layer=attention,
        smollm2_mlp_per_layer=mlp,
        smollm2_norm_per_layer=norms,
    )


def chart(result: DepthTable):
    data = pd.DataFrame({
        "model": result.models,
        "layers": result.layers,
        "parameters": result.parameters,
        "source": result.sources,
        "from": ["loaded here (config)" if live else "published" for live in result.live],
    })
    order = list(data.sort_values("layers", ascending=False)["model"])
    kinds = ["published", "loaded here (config)"]
    base = alt.Chart(data, title="Layers of well-known transformers (dashed line: 12)")
    bars = base.mark_bar().encode(
        x=alt.X("layers:Q", title="number of layers"),
        y=alt.Y("model:N", sort=order, title=None, axis=alt.Axis(labelLimit=0)),  # full names, both loaded models
        color=alt.Color("from:N", sort=kinds, scale=alt.Scale(domain=kinds, range=[OKABE_ITO[5], OKABE_ITO[1]]),
                        title=None, legend=alt.Legend(orient="top", labelLimit=0)),
        tooltip=["model", "layers", "parameters", "source"],
    )
    labels = base.mark_text(align="left", dx=4).encode(
        x="layers:Q", y=alt.Y("model:N", sort=order), text=alt.Text("layers:Q"),
    )
    twelve = alt.Chart(pd.DataFrame({"layers": [12]})).mark_rule(strokeDash=[5, 4], color=OKABE_ITO[7]).encode(
        x="layers:Q"
    )
    return (bars + labels + twelve).properties(width=520, height=28 * len(result.models))


def explain(result: DepthTable) -> str:
    published = [i for i, live in enumerate(result.live) if not live]
    twelve_years = sorted({result.years[i] for i in published if result.layers[i] == 12})
    deep = sorted((i for i in published if result.layers[i] > 12), key=lambda i: -result.layers[i])[:2]
    deepest = ", ".join(f"{result.models[i]} {result.layers[i]}" for i in deep)
    return (
        f"Only {len(result.with_twelve)} of these {len(result.models)} models have 12 layers: "
        f"{' and '.join(result.with_twelve)}, from {'-'.join(str(y) for y in (twelve_years[0], twelve_years[-1]))}. "
        f"Larger models are much deeper: {deepest}. The two models loaded here say so in their configs: "
        f"SmolLM2-135M has {result.smollm2_layers} layers ({result.smollm2_parameters:,} parameters) and "
        f"all-MiniLM-L6-v2 {result.minilm_layers} ({result.minilm_parameters:,}). Each SmolLM2 layer holds the same "
        f"{result.smollm2_per_layer:,} weights ({result.smollm2_attention_per_layer:,} attention, "
        f"{result.smollm2_mlp_per_layer:,} MLP, {result.smollm2_norm_per_layer:,} norm), so every extra layer "
        f"adds parameters and compute; the shared embedding adds {result.smollm2_embedding_parameters:,}. "
        "Depth is a hyperparameter chosen before training, together with width, not a standard of 12."
    )


def headline(result: DepthTable) -> list[tuple[str, str]]:
    return [
        ("SmolLM2-135M layers (config)", f"{result.smollm2_layers}"),
        ("all-MiniLM-L6-v2 layers (config)", f"{result.minilm_layers}"),
        ("Models here with 12 layers", f"{len(result.with_twelve)} of {len(result.models)}"),
        ("SmolLM2 parameters per layer", f"{result.smollm2_per_layer:,}"),
    ]


def status(result: DepthTable) -> tuple[bool, str]:
    if len(result.with_twelve) < len(result.models) / 2:
        return True, "Most of these models do not have 12 layers."
    return False, "Most models in this table have 12 layers."


def details(result: DepthTable) -> str:
    rows = "\n".join(f"| {m} | {n} | {p} | {s} |" for m, n, p, s in
                     zip(result.models, result.layers, result.parameters, result.sources))
    return (
        "| model | layers | size | source |\n|---|---|---|---|\n" + rows + "\n\n"
        "```python\n"
        "runtime.shape().n_layers                                            "
        f"# {result.smollm2_layers}\n"
        "sum(prod(shape) for shape in runtime.parameter_shapes().values())   "
        f"# {result.smollm2_parameters:,}\n"
        "```\n\n"
        "`parameter_shapes` lists each tensor once: SmolLM2's output layer reuses the embedding matrix "
        f"(runtime.shape().tied_embeddings = {result.smollm2_tied_embeddings}), so it is not counted twice."
    )


DEMO = Demo(
    id="depth-table",
    title="12 layers is not a standard",
    summary=(
        "Published layer counts, each with its source, next to the two models loaded here (read live "
        "from their configs): 12 layers was BERT-base and GPT-2 small; large models have 32 to 126, and "
        "even SmolLM2-135M has 30. Depth is a hyperparameter, fixed before training."
    ),
    default_prompt="",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    prompt_label="",
)
