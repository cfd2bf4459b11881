"""Causal vs bidirectional: a decoder reads only to the left, a BERT encoder reads both ways.

The same sentence goes through SmolLM2 (a decoder with a causal mask) and all-MiniLM-L6-v2
(a BERT encoder, no mask), and we draw one attention head of each side by side. SmolLM2's
weights above the diagonal are exactly 0; MiniLM's are not.

Then the "bank" experiment: two sentences that differ only *after* a word. SmolLM2's hidden
state for the word cannot see those later words, so it is the same at every layer (bit-identical
when the two sentences have the same number of tokens). MiniLM's output vector for the word
changes, because an encoder also reads the words that follow. This refutes "LLMs are based on
BERT" (chat LLMs are decoders) and shows why BERT's outputs are contextual in both directions.

Layer and head are chosen on SmolLM2's scale (layers 0-29, heads 0-8). MiniLM has only 6 layers,
so it shows the layer at the same relative depth, round(layer × 5 / 29) (layer 0 ↔ 0, 29 ↔ 5),
and the same head number (its heads 0-8 exist; it has 12).
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import torch

from kqv_demo import numerics
from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param, quoted_for_message
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import MINILM, SMOLLM2
from kqv_demo.markup import literal, visible

ROUNDING_LIMIT = numerics.STATE_NOISE
"""Largest relative difference we still call floating-point rounding: what two passes of other lengths (other
kernel blockings) or two CPUs can make of the same hidden state (kqv_demo.numerics)."""


@dataclass(frozen=True)
class CausalVsBidirectional:
    truncation: str | None
    sentence_a: str
    sentence_b: str
    word: str  # as SmolLM2 tokenises it
    layer: int
    head: int
    minilm_layer: int  # same relative depth as `layer`
    minilm_head: int
    smollm2_tokens: list[str]
    minilm_tokens: list[str]  # WordPiece, lower case, with [CLS] and [SEP]
    smollm2_weights: np.ndarray  # [T, T] one head of SmolLM2 on sentence A
    minilm_weights: np.ndarray  # [T', T'] one head of MiniLM on sentence A
    smollm2_upper_max: float  # largest weight above the diagonal: exactly 0 (causal mask)
    minilm_upper_sum: float  # total weight above the diagonal, this head
    minilm_upper_words: float  # ... of it, a word token reading a later word token (not [CLS]/[SEP])
    minilm_upper_by_head: np.ndarray  # [6, 12] total weight above the diagonal, every MiniLM head
    n_rows_minilm: int
    smollm2_positions: tuple[int, int]  # the word's position in sentence A and B
    minilm_positions: tuple[int, int]
    same_prefix: bool  # SmolLM2 tokens up to and including the word are the same in A and B
    same_length: bool  # A and B have the same number of SmolLM2 tokens
    smollm2_diff_by_layer: np.ndarray  # [30] max |state_A - state_B| of the word after each block
    smollm2_relative_diff: float  # max over layers of ||state_A - state_B|| / ||state_A||
    minilm_cosine_by_layer: np.ndarray  # [6] cosine of the word's vectors after each block
    minilm_cosine: float  # of the final output vectors (the last block)
    minilm_cosine_noise: float  # how far below 1 float32 rounding can put the cosine of a vector with itself

    @property
    def smollm2_max_abs_diff(self) -> float:
        return float(self.smollm2_diff_by_layer.max())

    @property
    def smollm2_unchanged(self) -> bool:
        return self.same_prefix and self.smollm2_relative_diff <= ROUNDING_LIMIT


def minilm_layer_for(layer: int, smollm2_layers: int, minilm_layers: int) -> int:
    """The MiniLM layer at the same relative depth as SmolLM2's `layer`."""
    return int(round(layer * (minilm_layers - 1) / (smollm2_layers - 1)))


def word_position(tokens: list[str], word: str, sentence: str, model_name: str) -> int:
    """First position whose token is `word` (ignoring case and the leading space)."""
    wanted = word.strip().lower()
    if not wanted:
        raise UserInputError("Type the word to compare, e.g. bank.")
    for index, token in enumerate(tokens):
        if token.strip().lower() == wanted:
            return index
    quoted, shown = quoted_for_message(sentence, tokens)
    raise UserInputError(
        f"{model_name} does not read {word.strip()!r} as one token in {quoted} (its tokens: {shown}). "
        "Pick a common word that appears in both sentences."
    )


def _resid(trace, n_layers: int, position: int) -> torch.Tensor:
    return torch.stack([trace[f"blocks.{layer}.resid_post"][position] for layer in range(n_layers)])


def compute(runtime, prompt: str, other: str, word: str, layer: int, head: int) -> CausalVsBidirectional:
    small, mini = runtime.shape(), runtime.shape(MINILM)
    mini_layer = minilm_layer_for(layer, small.n_layers, mini.n_layers)
    if not 0 <= head < mini.n_heads:
        raise UserInputError(f"Head {head} does not exist in MiniLM: it has heads 0 to {mini.n_heads - 1}.")
    pattern = f"blocks.{layer}.attn.pattern"
    residual = lambda name: name.endswith(".resid_post")  # noqa: E731
    small_a = runtime.trace(prompt, model=SMOLLM2, names_filter=lambda name: name == pattern or residual(name))
    small_b = runtime.trace(other, model=SMOLLM2, names_filter=residual)
    mini_a = runtime.trace(
        prompt, model=MINILM, names_filter=lambda name: name.endswith(".attn.pattern") or residual(name)
    )
    mini_b = runtime.trace(other, model=MINILM, names_filter=residual)

    small_pos = (word_position(small_a.tokens, word, prompt, "SmolLM2"),
                 word_position(small_b.tokens, word, other, "SmolLM2"))
    mini_pos = (word_position(mini_a.tokens, word, prompt, "MiniLM"),
                word_position(mini_b.tokens, word, other, "MiniLM"))

    state_a = _resid(small_a, small.n_layers, small_pos[0])  # [30, 576]
    state_b = _resid(small_b, small.n_layers, small_pos[1])
    diff = (state_a - state_b).abs().amax(dim=-1)
    relative = ((state_a - state_b).norm(dim=-1) / state_a.norm(dim=-1)).max()
    vec_a = _resid(mini_a, mini.n_layers, mini_pos[0])  # [6, 384]
    vec_b = _resid(mini_b, mini.n_layers, mini_pos[1])
    cosines = torch.nn.functional.cosine_similarity(vec_a, vec_b, dim=-1)

    small_weights = small_a[pattern][head]
    mini_all = torch.stack([mini_a[f"blocks.{each}.attn.pattern"] for each in range(mini.n_layers)])  # [6, 12, T, T]
    upper = torch.triu(mini_all, diagonal=1)
    mini_weights = mini_all[mini_layer, head]
    mini_upper = upper[mini_layer, head]
    specials = runtime.special_ids(MINILM)
    is_word = torch.tensor([token_id not in specials for token_id in mini_a.token_ids])
    words_only = mini_upper[is_word][:, is_word]

    return CausalVsBidirectional(
        truncation=small_a.notice,
        sentence_a=prompt,
        sentence_b=other,
        word=small_a.tokens[small_pos[0]],
        layer=layer,
        head=head,
        minilm_layer=mini_layer,
        minilm_head=head,
        smollm2_tokens=small_a.token_labels(),
        minilm_tokens=mini_a.token_labels(),
        smollm2_weights=small_weights.numpy().copy(),
        minilm_weights=mini_weights.numpy().copy(),
        smollm2_upper_max=float(torch.triu(small_weights, diagonal=1).abs().max()) if small_a.n_tokens > 1 else 0.0,
        minilm_upper_sum=float(mini_upper.sum()),
        minilm_upper_words=float(words_only.sum()),
        minilm_upper_by_head=upper.sum(dim=(-1, -2)).numpy().copy(),
        n_rows_minilm=mini_a.n_tokens,
        smollm2_positions=small_pos,
        minilm_positions=mini_pos,
        same_prefix=small_a.token_ids[: small_pos[0] + 1] == small_b.token_ids[: small_pos[1] + 1],
        same_length=small_a.n_tokens == small_b.n_tokens,
        smollm2_diff_by_layer=diff.numpy().copy(),
        smollm2_relative_diff=float(relative),
        minilm_cosine_by_layer=cosines.numpy().copy(),
        minilm_cosine=float(cosines[-1]),
        minilm_cosine_noise=numerics.cosine_noise(vec_a.shape[-1]),
    )


def chart(result: CausalVsBidirectional) -> alt.HConcatChart | alt.VConcatChart:
    size = charts.attention_map_size(max(len(result.smollm2_tokens), len(result.minilm_tokens)))
    left = charts.attention_heatmap(
        result.smollm2_weights, result.smollm2_tokens,
        f"SmolLM2 (causal decoder), layer {result.layer} head {result.head}", size,
    )
    right = charts.attention_heatmap(
        result.minilm_weights, result.minilm_tokens,
        f"MiniLM (BERT encoder), layer {result.minilm_layer} head {result.minilm_head}", size,
    )
    return charts.attention_pair(left, right, size).properties(
        title=alt.TitleParams("Grey cells: weight exactly 0 (masked future tokens)", anchor="start",
                              fontSize=12, fontWeight="normal", orient="bottom")
    )


def _smollm2_sentence(result: CausalVsBidirectional) -> str:
    word = literal(result.word.strip())
    if not result.same_prefix:
        return (
            f"Your two sentences already differ before “{word}”, so even SmolLM2's state for it changes "
            f"(by up to {result.smollm2_max_abs_diff:.3g}): pick two sentences that differ only after the word."
        )
    if result.smollm2_max_abs_diff == 0:
        return (
            f"In SmolLM2 the state of “{word}” is bit-identical at all {len(result.smollm2_diff_by_layer)} "
            "layers (largest difference exactly 0): the words after it cannot reach it."
        )
    return (
        f"In SmolLM2 the state of “{word}” differs by at most {result.smollm2_max_abs_diff:.1e} "
        f"({result.smollm2_relative_diff:.0e} of its size) over all layers: only rounding, because the "
        "sentences have different lengths and the computer adds the same numbers in a different order. "
        "With equally long sentences it is exactly 0."
    )


def explain(result: CausalVsBidirectional) -> str:
    word = literal(result.word.strip())
    reading_right = int((result.minilm_upper_by_head > 0.5).sum())
    return (
        f"Left: SmolLM2 layer {result.layer}, head {result.head}. Every weight above the diagonal is exactly "
        f"{result.smollm2_upper_max:g}, because a decoder's token never reads the tokens after it. Right: MiniLM "
        f"layer {result.minilm_layer} (the same relative depth), head {result.minilm_head}. Its "
        f"{result.n_rows_minilm} rows put {result.minilm_upper_sum:.2f} of weight above the diagonal in total "
        f"({result.minilm_upper_words:.2f} of it is a word reading a later word); {reading_right} of MiniLM's "
        f"{result.minilm_upper_by_head.size} heads put more than 0.5 weight there.\n\n"
        f"Now “{word}” in “{literal(result.sentence_a)}” and “{literal(result.sentence_b)}”. "
        f"{_smollm2_sentence(result)} "
        f"MiniLM's output vector for “{word}” changes: cosine {result.minilm_cosine:.3f} between the two "
        "sentences, because an encoder reads both directions."
    )


def headline(result: CausalVsBidirectional) -> list[tuple[str, str]]:
    return [
        ("SmolLM2: weight above the diagonal", f"{result.smollm2_upper_max:g}"),
        ("MiniLM: weight above the diagonal", f"{result.minilm_upper_sum:.2f}"),
        (f"SmolLM2: max change of “{literal(result.word.strip())}”", f"{result.smollm2_max_abs_diff:.3g}"),
        (f"MiniLM: cosine of “{literal(result.word.strip())}”", f"{result.minilm_cosine:.3f}"),
    ]


def status(result: CausalVsBidirectional) -> tuple[bool, str]:
    if not result.same_prefix:
        return False, "The two sentences differ before the word: the experiment needs them to differ only after it."
    if 1 - result.minilm_cosine <= result.minilm_cosine_noise:
        return False, "The two sentences are the same after the word too: change the words after it."
    if result.smollm2_unchanged:
        return True, "The decoder's state for the word ignores the later words; the encoder's does not."
    return False, "SmolLM2's state for the word changed although only later words differ: please report this."


def details(result: CausalVsBidirectional) -> str:
    word = visible(result.word.strip())  # inside a code block: one line cannot close it
    return (
        "```python\n"
        "keep = lambda name: name.endswith('.resid_post')\n"
        f"a = runtime.trace(sentence_a, names_filter=keep)   # SmolLM2; '{word}' at {result.smollm2_positions[0]}\n"
        f"b = runtime.trace(sentence_b, names_filter=keep)   # '{word}' at {result.smollm2_positions[1]}\n"
        f"max(abs(a[f'blocks.{{L}}.resid_post'][{result.smollm2_positions[0]}] "
        f"- b[f'blocks.{{L}}.resid_post'][{result.smollm2_positions[1]}]).max()\n"
        f"    for L in range({len(result.smollm2_diff_by_layer)}))      # {result.smollm2_max_abs_diff:.3g}\n"
        f"# MiniLM: the same with model='minilm', then cosine of the last layer's vectors: {result.minilm_cosine:.4f}\n"
        "```\n\n"
        "MiniLM cosine after each layer: "
        + ", ".join(f"{c:.3f}" for c in result.minilm_cosine_by_layer)
        + ". MiniLM layer = round(SmolLM2 layer × 5 / 29)."
    )


DEMO = Demo(
    id="causal-vs-bidirectional",
    title="Causal decoder vs bidirectional encoder",
    summary=(
        "The same sentence in SmolLM2 (a GPT-style decoder) and MiniLM (a BERT encoder): the decoder's "
        "attention is exactly 0 above the diagonal, the encoder's is not. Change only the words after "
        "“bank”: the decoder's state for “bank” stays the same at every layer, the encoder's changes."
    ),
    default_prompt="I went to the bank to fish",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    prompt_label="First sentence",
    params=(
        Param("other", "text", "I went to the bank to deposit", "Second sentence",
              help="Same start as the first sentence; only the words after the compared word change."),
        Param("word", "text", "bank", "The word to compare"),
        Param("layer", "layer", 6, "Layer",
              help="SmolLM2 layer; MiniLM (6 layers) shows the layer at the same relative depth."),
        Param("head", "head", 8, "Head", help="The same head number in both models."),
    ),
)
