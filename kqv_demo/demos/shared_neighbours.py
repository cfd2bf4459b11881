"""Different objectives, the same neighbours: the objective alone does not decide a model's concepts.

SmolLM2 was pre-trained to predict the next token and then tuned to follow instructions; MiniLM
(all-MiniLM-L6-v2) is a 6-layer BERT-style encoder, distilled from a larger pre-trained
transformer (Wang et al. 2020) and then trained contrastively to match paired sentences.
Different objectives, data mixes and architectures. We give both the same words, in groups
(animals, countries, colours ...), and compare which words each model puts next to which: for
every word, its k nearest neighbours by cosine similarity in SmolLM2's hidden states (one layer)
and in MiniLM's sentence embeddings. The share of neighbours the two models agree on is the
mutual nearest-neighbour alignment of Huh et al. (2024). It is far above chance, and far above
what spelling alone would give. If the concepts were "entirely a result of the pre-training task
and objectives", two models trained for different tasks would not agree on them; what they share
comes largely from the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param
from kqv_demo.errors import UserInputError
from kqv_demo.markup import literal

# SmolLM2 reads each item after this prefix, so that no item sits at position 0, where every
# token becomes an attention sink with an outsized hidden state (see the attention-sinks demo).
PREFIX = "A word:"
MIN_ITEMS, MAX_ITEMS, MAX_ITEM_CHARS = 6, 60, 40
SHUFFLES = 2000  # for the chance level: the alignment after shuffling which word is which
CELL = 12  # px per word in the similarity maps: one line of label text
MAX_WIDTH = 800  # px: the app's main column


@dataclass(frozen=True)
class SharedNeighbours:
    items: list[str]
    groups: list[int]  # the group of each item, in the order given
    group_labels: list[str]  # "cat, dog …" for each group
    layer: int
    k: int  # neighbours compared per item
    smollm2_similarity: np.ndarray  # [n, n] cosine of mean-centred hidden states at `layer`
    minilm_similarity: np.ndarray  # [n, n] cosine of mean-centred sentence embeddings
    alignment_by_layer: np.ndarray  # [n_layers + 1] SmolLM2 vs MiniLM; index 0 = the token embeddings
    spelling_alignment: float  # character-trigram overlap vs MiniLM: a control that knows only spelling
    chance: float  # mean alignment over shuffles
    chance_p99: float  # 99th percentile over shuffles
    same_group_smollm2: float  # share of an item's k neighbours from its own group (NaN with one group)
    same_group_minilm: float
    same_group_spelling: float

    @property
    def alignment(self) -> float:
        """SmolLM2 at `layer` (after that block) vs MiniLM."""
        return float(self.alignment_by_layer[self.layer + 1])

    @property
    def n_items(self) -> int:
        return len(self.items)

    def neighbours(self, similarity: np.ndarray, item: int) -> list[str]:
        return [self.items[j] for j in nearest(similarity, self.k)[item]]


def _parse(text: str) -> tuple[list[str], list[int]]:
    items, groups = [], []
    for index, group in enumerate(part for part in text.split(";") if part.strip()):
        words = [word.strip() for word in group.split(",") if word.strip()]
        items += words
        groups += [index] * len(words)
    if len(items) < MIN_ITEMS:
        raise UserInputError(
            f"Give at least {MIN_ITEMS} words, separated by commas, with a semicolon between groups, e.g. "
            "“cat, dog, horse; red, blue, green”."
        )
    if len(items) > MAX_ITEMS:
        raise UserInputError(f"That is {len(items)} words; give at most {MAX_ITEMS}.")
    long = [item for item in items if len(item) > MAX_ITEM_CHARS]
    if long:
        raise UserInputError(f"“{long[0][:50]}…” is long for a word; keep each item under {MAX_ITEM_CHARS} characters.")
    seen: dict[str, str] = {}
    for item in items:
        if item.lower() in seen:
            raise UserInputError(f"“{item}” appears twice; give each word once.")
        seen[item.lower()] = item
    return items, groups


def nearest(similarity: np.ndarray, k: int) -> np.ndarray:
    """[n, k] indices of each row's k most similar other items. Ties are broken in a fixed random
    order, not by position: the words of a group are given together, so "lower index first" would
    hand a tie (the spelling control has many, at 0) to the word's own group."""
    others = similarity.astype(float).copy()
    np.fill_diagonal(others, -np.inf)
    tie_break = np.random.default_rng(0).random(others.shape)
    return np.lexsort((tie_break, -others), axis=1)[:, :k]


def mutual_alignment(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Mean over items of |kNN_a(i) ∩ kNN_b(i)| / k (Huh et al. 2024, mutual nearest neighbours)."""
    return _overlap(nearest(a, k), nearest(b, k))


def _overlap(neighbours_a: np.ndarray, neighbours_b: np.ndarray) -> float:
    k = neighbours_a.shape[1]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(neighbours_a.tolist(), neighbours_b.tolist())]))


def _membership(neighbours: np.ndarray) -> np.ndarray:
    """[n, n] booleans: row i marks the k neighbours of item i."""
    n = len(neighbours)
    members = np.zeros((n, n), dtype=bool)
    members[np.arange(n)[:, None], neighbours] = True
    return members


def _shuffled_alignments(a: np.ndarray, b: np.ndarray, k: int, shuffles: int) -> np.ndarray:
    """The alignment after relabelling b's items at random: what agreement by chance looks like."""
    n = len(a)
    members_a, members_b = _membership(nearest(a, k)), _membership(nearest(b, k))
    rng = np.random.default_rng(0)
    relabel = np.argsort(rng.random((shuffles, n)), axis=1)  # [shuffles, n]: one random order per shuffle
    relabelled = members_b[relabel[:, :, None], relabel[:, None, :]]  # [shuffles, n, n]
    return (relabelled & members_a).sum(axis=(1, 2)) / (n * k)


def _cosine(vectors: np.ndarray) -> np.ndarray:
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True).clip(min=1e-12)
    return unit @ unit.T


def _trigrams(word: str) -> set[str]:
    padded = f"  {word.lower()} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def spelling_similarity(items: list[str]) -> np.ndarray:
    """Jaccard overlap of character trigrams: similar only if spelled alike."""
    grams = [_trigrams(item) for item in items]
    return np.array([[len(a & b) / len(a | b) for b in grams] for a in grams])


def _same_group(similarity: np.ndarray, groups: list[int], k: int) -> float:
    """Share of the k neighbours from the item's own group, over items whose group has other members
    (NaN with one group, or with no group of two or more)."""
    labels = np.array(groups)
    sizes = np.bincount(labels)
    counted = sizes[labels] >= 2
    if len(sizes) < 2 or not counted.any():
        return float("nan")
    return float((labels[nearest(similarity, k)] == labels[:, None])[counted].mean())


def _hidden_states(runtime, items: list[str]) -> np.ndarray:
    """[n_layers + 1, n, d_model]: each item's hidden state averaged over its own tokens, from the
    token embeddings (index 0) through every block, all items in one packed pass."""
    texts = [f"{PREFIX} {item}" for item in items]
    shape = runtime.shape()
    n_layers = shape.n_layers
    traces = runtime.trace_batch(texts, names_filter=lambda name: name.endswith(("resid_post", "blocks.0.resid_pre")))
    states = np.empty((n_layers + 1, len(items), shape.d_model))
    for index, (text, trace) in enumerate(zip(texts, traces)):
        _ids, offsets = runtime.encode_with_offsets(text)
        own = [position for position, (_, end) in enumerate(offsets[: len(trace.token_ids)]) if end > len(PREFIX)]
        states[0, index] = trace["blocks.0.resid_pre"][own].double().mean(0).numpy()
        for layer in range(n_layers):
            states[layer + 1, index] = trace[f"blocks.{layer}.resid_post"][own].double().mean(0).numpy()
    return states


def compute(runtime, prompt: str, layer: int, neighbours: int) -> SharedNeighbours:
    items, groups = _parse(prompt)
    if neighbours > len(items) - 2:
        raise UserInputError(
            f"With {len(items)} words, compare at most {len(items) - 2} neighbours per word "
            f"(you asked for {neighbours})."
        )
    k = neighbours
    states = _hidden_states(runtime, items)
    minilm = _cosine(runtime.embed(items).astype(float))
    by_layer = np.array([mutual_alignment(_cosine(layer_states), minilm, k) for layer_states in states])
    smollm2 = _cosine(states[layer + 1])
    spelling = spelling_similarity(items)
    shuffled = _shuffled_alignments(smollm2, minilm, k, SHUFFLES)
    labels = []
    for group in sorted(set(groups)):
        members = [item for item, g in zip(items, groups) if g == group]
        labels.append(", ".join(members[:2]) + (" …" if len(members) > 2 else ""))
    return SharedNeighbours(
        items=items,
        groups=groups,
        group_labels=labels,
        layer=layer,
        k=k,
        smollm2_similarity=smollm2,
        minilm_similarity=minilm,
        alignment_by_layer=by_layer,
        spelling_alignment=mutual_alignment(spelling, minilm, k),
        chance=float(shuffled.mean()),
        chance_p99=float(np.quantile(shuffled, 0.99)),
        same_group_smollm2=_same_group(smollm2, groups, k),
        same_group_minilm=_same_group(minilm, groups, k),
        same_group_spelling=_same_group(spelling, groups, k),
    )


def _heatmap(result: SharedNeighbours, similarity: np.ndarray, title: str, colour: alt.Color) -> alt.Chart:
    labels = [f"{i + 1:>2} {item}" for i, item in enumerate(result.items)]
    rows = [
        {"word": labels[i], "neighbour": labels[j], "cosine": float(similarity[i, j]),
         "group": result.group_labels[result.groups[i]]}
        for i in range(result.n_items) for j in range(result.n_items) if i != j
    ]
    size = _map_size(result)
    return (
        alt.Chart(pd.DataFrame(rows), title=title)
        .mark_rect()
        .encode(
            x=alt.X("neighbour:N", sort=labels, title=None,
                    axis=alt.Axis(labelAngle=-90, labelOverlap=False, labelLimit=0, labelPadding=4)),
            y=alt.Y("word:N", sort=labels, title=None, axis=alt.Axis(labelOverlap=False, labelLimit=0, labelPadding=4)),
            color=colour,
            tooltip=["word", "neighbour", alt.Tooltip("cosine:Q", format=".3f"), "group"],
        )
        .properties(width=size, height=size)
    )


def _map_size(result: SharedNeighbours) -> int:
    return max(200, CELL * result.n_items)


def _maps_side_by_side(result: SharedNeighbours) -> bool:
    """Whether both maps, each with its word labels (about 6 px a character), fit across the app's column."""
    labels = 6 * len(f"{result.n_items} {max(result.items, key=len)}") + 20
    return 2 * (_map_size(result) + labels) + 20 <= MAX_WIDTH


def chart(result: SharedNeighbours) -> alt.VConcatChart:
    """Both similarity maps on one colour scale (words in the order given), and the agreement at every layer."""
    off_diagonal = ~np.eye(result.n_items, dtype=bool)
    values = np.concatenate([result.smollm2_similarity[off_diagonal], result.minilm_similarity[off_diagonal]])
    scale = alt.Scale(scheme="viridis", domain=[float(values.min()), float(values.max())])
    cosine = alt.Color("cosine:Q", scale=scale, title="cosine (both maps)",
                       legend=alt.Legend(orient="top", gradientLength=300))
    pair = alt.hconcat if _maps_side_by_side(result) else alt.vconcat
    maps = pair(
        _heatmap(result, result.smollm2_similarity, f"SmolLM2, after layer {result.layer}", cosine),
        _heatmap(result, result.minilm_similarity, "MiniLM sentence embeddings", cosine),
    ).resolve_scale(color="shared")
    rows = [{"layer": layer - 1, "agreement": float(value), "measure": "SmolLM2 layer vs MiniLM"}
            for layer, value in enumerate(result.alignment_by_layer)]
    references = pd.DataFrame([
        {"agreement": result.spelling_alignment, "measure": "spelling alone vs MiniLM"},
        {"agreement": result.chance_p99, "measure": "chance (99th percentile of shuffles)"},
    ])
    measures = ["SmolLM2 layer vs MiniLM", "spelling alone vs MiniLM", "chance (99th percentile of shuffles)"]
    colour = alt.Color("measure:N", sort=measures, scale=charts.palette(3), title=None,
                       legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=0))
    line = (
        alt.Chart(pd.DataFrame(rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("layer:Q", title="SmolLM2 layer (−1 = token embeddings)",
                    scale=alt.Scale(domain=[-1, len(rows) - 2])),
            y=alt.Y("agreement:Q", title=f"shared {result.k} nearest neighbours", scale=alt.Scale(domain=[0, 1])),
            color=colour,
            tooltip=["layer", alt.Tooltip("agreement:Q", format=".2f")],
        )
    )
    rules = alt.Chart(references).mark_rule(strokeDash=[6, 3]).encode(
        y="agreement:Q", color=colour, tooltip=["measure", alt.Tooltip("agreement:Q", format=".2f")]
    )
    agreement = alt.layer(line, rules, title="How many nearest neighbours the two models share").properties(
        width=560, height=220
    )
    return alt.vconcat(maps, agreement).resolve_scale(color="independent")


def _percent(value: float) -> str:
    return f"{value:.0%}"


def explain(result: SharedNeighbours) -> str:
    example = 0  # the first word given
    grouped = not np.isnan(result.same_group_smollm2)
    groups = (
        f" Of each word's {result.k} nearest neighbours, {_percent(result.same_group_smollm2)} come from its own "
        f"group in SmolLM2 and {_percent(result.same_group_minilm)} in MiniLM (spelling alone: "
        f"{_percent(result.same_group_spelling)})."
        if grouped else ""
    )
    return (
        f"SmolLM2 (trained to predict the next token, then to follow instructions) and MiniLM (a BERT-style encoder "
        "distilled from a larger model, then trained to match paired sentences) each place your "
        f"{result.n_items} words "
        f"in their own space. For every word we took its {result.k} nearest neighbours in each model: the two models "
        f"share {_percent(result.alignment)} of them (SmolLM2 after layer {result.layer}), against "
        f"{_percent(result.chance)} by chance ({_percent(result.chance_p99)} at the 99th percentile of shuffles) and "
        f"{_percent(result.spelling_alignment)} for a control that knows only spelling.{groups} "
        f"For example, “{literal(result.items[example])}” is nearest to "
        f"{', '.join(map(literal, result.neighbours(result.smollm2_similarity, example)))} in SmolLM2 and to "
        f"{', '.join(map(literal, result.neighbours(result.minilm_similarity, example)))} in MiniLM. "
        "SmolLM2's learned token "
        f"embeddings, before any layer, already share {_percent(float(result.alignment_by_layer[0]))}. Different "
        "objectives, similar concepts: the pre-training objective alone does not decide what a model represents."
    )


def headline(result: SharedNeighbours) -> list[tuple[str, str]]:
    return [
        ("Shared nearest neighbours", _percent(result.alignment)),
        ("By chance (99th percentile)", _percent(result.chance_p99)),
        ("Spelling alone vs MiniLM", _percent(result.spelling_alignment)),
        ("Best SmolLM2 layer", f"{int(np.argmax(result.alignment_by_layer)) - 1} "
                                f"({_percent(float(result.alignment_by_layer.max()))})"),
    ]


def status(result: SharedNeighbours) -> tuple[bool, str]:
    if result.alignment > result.chance_p99 and result.alignment > result.spelling_alignment:
        return True, "The two models agree on neighbours far beyond chance and beyond spelling."
    return False, (
        "On these words the two models agree no more than chance or spelling would: try words that fall "
        "into clear groups, and a middle layer."
    )


def details(result: SharedNeighbours) -> str:
    return (
        "```python\n"
        f"smollm2 = mean over each word's tokens of resid_post[{result.layer}]   # read after “{PREFIX} ”\n"
        "minilm = runtime.embed(words)                       # mean-pooled, as the model is meant to be used\n"
        "cosine = (x - x.mean(0)) normalised, then x @ x.T   # centred: removes the direction all words share\n"
        f"agreement = mean over words of |kNN_smollm2 ∩ kNN_minilm| / {result.k}\n"
        "```\n\n"
        "This is the mutual nearest-neighbour alignment of Huh et al. (2024), *The Platonic Representation "
        f"Hypothesis*. Chance is measured by shuffling which word is which {SHUFFLES:,} times. The spelling "
        "control compares character trigrams, so it only knows how the words are written. The words are read "
        f"after “{PREFIX}” so that none sits at position 0, where SmolLM2 turns every token into an attention sink."
    )


DEMO = Demo(
    id="shared-neighbours",
    title="Different objectives, the same neighbours",
    summary=(
        "Two models trained for different tasks (next-token prediction vs matching sentence pairs) agree on "
        "which words are close to which, far beyond chance and beyond spelling: the pre-training objective "
        "alone does not decide a model's concepts."
    ),
    default_prompt=(
        "cat, dog, horse, cow, sheep; France, Spain, Italy, Japan, Brazil; red, blue, green, yellow, purple; "
        "seven, eight, nine, three, four; piano, guitar, violin, drum, flute"
    ),
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    prompt_label="Words, with commas between them and a semicolon between groups",
    params=(
        Param("layer", "layer", 15, "SmolLM2 layer"),
        Param("neighbours", "int", 4, "Nearest neighbours compared per word", low=1, high=20),
    ),
)
