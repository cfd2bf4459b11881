"""Attention weights are computed afresh for each input; only W_Q and W_K are learned.

The same layer and query head of SmolLM2 read two sentences in one packed pass. For the
words the two sentences share, we compare the weight that the same query word gives the
same key word: a learned table of weights would give the same number in both sentences,
but the weights are softmax(q·k/√d) of queries and keys computed from each sentence's
own hidden states, so they differ. What is learned, W_Q and W_K of that layer, is one
tensor each, used for both sentences and unchanged by the pass (same
BLAKE3 digest before and after); its shape does not depend on the input, while the
weights form a T × T matrix for a T-token input. Each row of weights sums to 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import torch

from kqv_demo import numerics, settings
from kqv_demo.demos import charts
from kqv_demo.demos.base import Demo, Param, check_layer_head
from kqv_demo.errors import UserInputError
from kqv_demo.markup import literal
from kqv_demo.runtime import hashes_digest, tensor_hash
from kqv_demo.trace import token_display

# Twenty times the most an attention weight can move between two passes by different kernels (another CPU,
# a packed pass), at its worst (p = 1/2, the longest prompt): a larger difference is a different weight.
DIFFERENT_WEIGHT = 20 * float(numerics.weight_noise(0.5, settings.MAX_PROMPT_TOKENS))


@dataclass(frozen=True)
class SharedPair:
    """One (query word, key word) pair present in both sentences, and its weight in each."""

    query: str
    key: str
    weight_a: float
    weight_b: float

    @property
    def difference(self) -> float:
        return abs(self.weight_a - self.weight_b)


@dataclass(frozen=True)
class WeightsPerInput:
    truncation: str | None
    sentence_a: str
    sentence_b: str
    tokens_a: list[str]  # axis labels, e.g. "3 ·on"
    tokens_b: list[str]
    layer: int
    head: int
    weights_a: np.ndarray  # [T_a, T_a] the model's attention weights for sentence A
    weights_b: np.ndarray  # [T_b, T_b]
    shared_tokens: list[str]  # tokens that occur exactly once in each sentence
    pairs: list[SharedPair]  # every shared (query, key) pair the causal mask lets the query see in both
    identical_inputs: bool  # the two sentences have the same tokens
    row_sum_error: float  # max |Σ_j w_ij − 1| over both sentences
    row_sum_bound: float  # float32 bound for that error at the longer sentence's length
    w_q_shape: tuple[int, ...]
    w_k_shape: tuple[int, ...]
    digest_before: str  # BLAKE3 of this layer's W_Q and W_K (names and bytes), before the pass
    digest_after: str  # ... and after it

    @property
    def max_difference(self) -> float:
        return max((pair.difference for pair in self.pairs), default=0.0)

    @property
    def largest(self) -> SharedPair | None:
        return max(self.pairs, key=lambda pair: pair.difference, default=None)

    @property
    def weights_differ(self) -> bool:
        return self.max_difference >= DIFFERENT_WEIGHT

    @property
    def learned_unchanged(self) -> bool:
        return self.digest_before == self.digest_after


def _once(tokens: list[str]) -> dict[str, int]:
    """Tokens that occur exactly once, with their position (a repeated word would be ambiguous)."""
    positions: dict[str, list[int]] = {}
    for position, token in enumerate(tokens):
        positions.setdefault(token, []).append(position)
    return {token: found[0] for token, found in positions.items() if len(found) == 1}


def _shared_pairs(tokens_a: list[str], tokens_b: list[str], weights_a: torch.Tensor,
                  weights_b: torch.Tensor) -> tuple[list[str], list[SharedPair]]:
    once_a, once_b = _once(tokens_a), _once(tokens_b)
    shared = [token for token in tokens_a if token in once_a and token in once_b]
    pairs = [
        SharedPair(query, key, float(weights_a[once_a[query], once_a[key]]),
                   float(weights_b[once_b[query], once_b[key]]))
        for query in shared
        for key in shared
        if once_a[key] <= once_a[query] and once_b[key] <= once_b[query]  # visible to the query in both
    ]
    return shared, pairs


def learned_digest(named: dict[str, torch.Tensor]) -> str:
    """One BLAKE3 digest of these weights' names and bytes (runtime.tensor_hash each, as the model's own
    weight hashes), so it can be compared with runtime.parameter_hashes."""
    return hashes_digest({name: tensor_hash(name, tensor) for name, tensor in named.items()})


def _learned(runtime, layer: int) -> dict[str, torch.Tensor]:
    names = [f"model.layers.{layer}.self_attn.{projection}.weight" for projection in ("q_proj", "k_proj")]
    return {name: runtime.parameter(name) for name in names}


def compute(runtime, prompt: str, other: str, layer: int, head: int) -> WeightsPerInput:
    shape = runtime.shape()
    check_layer_head(shape, layer, head)
    learned = _learned(runtime, layer)
    before = learned_digest(learned)
    w_q, w_k = learned.values()
    name = f"blocks.{layer}.attn.pattern"
    trace_a, trace_b = runtime.trace_batch([prompt, other], names_filter=lambda hook: hook == name)
    weights_a, weights_b = trace_a[name][head], trace_b[name][head]
    shared, pairs = _shared_pairs(trace_a.tokens, trace_b.tokens, weights_a, weights_b)
    if not pairs:
        raise UserInputError(
            "The two sentences share no word, so there is no pair of words to compare. "
            "Use two sentences that share some words, e.g. change one word of the first."
        )
    row_error = max(float((w.sum(-1) - 1).abs().max()) for w in (weights_a, weights_b))
    notices = [notice for notice in (trace_a.notice, trace_b.notice) if notice]
    return WeightsPerInput(
        truncation=" ".join(notices) or None,
        sentence_a=prompt,
        sentence_b=other,
        tokens_a=trace_a.token_labels(),
        tokens_b=trace_b.token_labels(),
        layer=layer,
        head=head,
        weights_a=weights_a.numpy().copy(),
        weights_b=weights_b.numpy().copy(),
        shared_tokens=shared,
        pairs=pairs,
        identical_inputs=trace_a.token_ids == trace_b.token_ids,
        row_sum_error=row_error,
        row_sum_bound=numerics.sums_to_one_noise(max(trace_a.n_tokens, trace_b.n_tokens)),
        w_q_shape=tuple(w_q.shape),
        w_k_shape=tuple(w_k.shape),
        digest_before=before,
        digest_after=learned_digest(_learned(runtime, layer)),
    )


def chart(result: WeightsPerInput) -> alt.HConcatChart | alt.VConcatChart:
    """The two attention maps of the same layer and head, on one colour scale."""
    n_tokens = max(len(result.tokens_a), len(result.tokens_b))
    side = charts.pair_size(n_tokens, max(len(label) for label in result.tokens_a + result.tokens_b))
    size = side or charts.attention_map_size(n_tokens)
    where = f"layer {result.layer}, head {result.head}"
    first = charts.attention_heatmap(result.weights_a, result.tokens_a, f"First sentence ({where})", size)
    second = charts.attention_heatmap(result.weights_b, result.tokens_b, f"Second sentence ({where})", size)
    pair = (charts.attention_pair(first, second, size) if side
            else alt.vconcat(first, second).resolve_scale(color="shared"))
    return pair.properties(title=alt.TitleParams(
        "Same layer, same head, same W_Q and W_K: different weights. Grey: masked (weight exactly 0).",
        anchor="start", fontSize=12, fontWeight="normal", orient="bottom",
    ))


def _word(token: str) -> str:
    return f"“{literal(token_display(token))}”"


def _example(result: WeightsPerInput) -> str:
    pair = result.largest
    if pair is None or not result.weights_differ:
        return ""
    return (
        f" For example, the query {_word(pair.query)} gives the key {_word(pair.key)} weight "
        f"{pair.weight_a:.2f} in the first sentence and {pair.weight_b:.2f} in the second."
    )


def _comparison(result: WeightsPerInput) -> str:
    compared = (
        f"For the {len(result.shared_tokens)} words the sentences share, the same query word gives the same "
        f"key word a weight that differs by up to **{result.max_difference:.2f}** ({len(result.pairs)} pairs)."
    )
    if result.identical_inputs:
        return compared + " The two sentences are the same tokens, so the weights are the same too: change a word."
    if not result.weights_differ:
        return compared + (
            " Here they barely differ: in a decoder a word's weights depend only on the words up to it, so words "
            "after an identical beginning, or a head that puts nearly all its weight on the first token, change "
            "little. Change an earlier word, or pick another head."
        )
    return compared + _example(result)


def explain(result: WeightsPerInput) -> str:
    t_a, t_b = len(result.tokens_a), len(result.tokens_b)
    return (
        f"Layer {result.layer}, head {result.head} read both sentences. {_comparison(result)} "
        "A learned table of attention weights would give one number per pair. Instead each weight is "
        "softmax(q·k/√d), from a query and a key computed from this input's own hidden states. "
        f"What is learned is W_Q ({result.w_q_shape[0]}×{result.w_q_shape[1]}) and W_K "
        f"({result.w_k_shape[0]}×{result.w_k_shape[1]}): one tensor each, used for both sentences and unchanged "
        f"by the pass (same BLAKE3 digest before and after). The weights are {t_a}×{t_a} for the first "
        f"sentence and {t_b}×{t_b} for the second: their shape follows the input, so they cannot be stored "
        f"parameters. Each row sums to 1 (largest error {result.row_sum_error:.0e})."
    )


def headline(result: WeightsPerInput) -> list[tuple[str, str]]:
    return [
        ("Max |weight A − weight B|, shared words", f"{result.max_difference:.2f}"),
        ("Shared word pairs compared", f"{len(result.pairs)}"),
        ("Max |row sum − 1|", f"{result.row_sum_error:.0e}"),
        ("W_Q, W_K changed by the pass", "no" if result.learned_unchanged else "yes"),
    ]


def status(result: WeightsPerInput) -> tuple[bool, str]:
    sums_to_one = result.row_sum_error <= result.row_sum_bound
    if not (sums_to_one and result.learned_unchanged):
        return False, "The weights or the learned matrices did not behave as described: please report this."
    if result.identical_inputs:
        return True, "The same input gives the same weights; change a word to see them change."
    if result.weights_differ:
        return True, "Same learned W_Q and W_K, different input: different attention weights."
    return True, "The learned matrices are the same; on these sentences this head's weights barely change."


def details(result: WeightsPerInput) -> str:
    layer, head = result.layer, result.head
    return (
        "$$w_{ij} = \\mathrm{softmax}_j\\!\\left(\\frac{(W_Q x_i)\\cdot(W_K x_j)}{\\sqrt{d}}\\right)$$\n\n"
        "The hidden states $x$ come from the input; $W_Q$ and $W_K$ are the learned, fixed part.\n\n"
        "```python\n"
        "a, b = runtime.trace_batch([first, second],   # one packed pass\n"
        f"                           names_filter=lambda n: n == 'blocks.{layer}.attn.pattern')\n"
        f"a['blocks.{layer}.attn.pattern'][{head}]   # [{len(result.tokens_a)}, {len(result.tokens_a)}]\n"
        f"b['blocks.{layer}.attn.pattern'][{head}]   # [{len(result.tokens_b)}, {len(result.tokens_b)}]\n"
        f"runtime.parameter('model.layers.{layer}.self_attn.q_proj.weight')   # {list(result.w_q_shape)}\n"
        "```\n\n"
        f"BLAKE3 of W_Q and W_K: {literal(result.digest_before[:16])}… before, "
        f"{literal(result.digest_after[:16])}… after."
    )


DEMO = Demo(
    id="weights-per-input",
    title="Attention weights are computed for each input, not learned",
    summary=(
        "The same layer and head read two sentences: the same pair of words gets different attention weights, "
        "because each weight is softmax(q·k/√d) of a query and a key computed from that input. Only W_Q and "
        "W_K are learned, and they are the same for both sentences."
    ),
    default_prompt="The cat sat on the mat because it was tired.",
    compute=compute,
    chart=chart,
    explain=explain,
    headline=headline,
    status=status,
    details=details,
    prompt_label="First sentence",
    params=(
        Param("other", "text", "The little dog slept on the mat because it was cold.", "Second sentence"),
        Param("layer", "layer", 3, "Layer"),
        Param("head", "head", 4, "Query head"),
    ),
)
