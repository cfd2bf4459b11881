"""Every number a claim's evidence quotes is what its linked demo computes, on the claim's own inputs.

Each claim's `refutation.evidence` describes what its demo shows when run with the claim's
`demo.prompt` and `demo.params` (or the demo's defaults). The table below lists, per claim, the
passages of the evidence that carry numbers (text exactly as it appears in the evidence) and a
function that rebuilds that passage from the demo's result, formatted at the rounding the evidence
uses. The demos run on the real models, once per distinct input.

Every figure must be the same on any CPU. So a float32 residue (two computations of the same thing
that differ in their last bits, by an amount that depends on the CPU's kernels) is quoted as a bound
that float32 rounding provably stays under (`bound`), and every quoted figure is checked again on a
simulated CPU whose rounding is far worse than any real one's (`worse_rounding`, both ways): a figure
too close to a rounding point or a threshold fails here, not on a learner's machine. Exact figures stay
exact only where the code guarantees them on every CPU (the same numbers added in the same order, a
masked weight that is exactly 0, a hash).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from kqv_demo import numerics
from kqv_demo.content.loader import load_bank
from kqv_demo.demos import DEMOS
from kqv_demo.demos.soft_lookup import MASS
from tests.quoted import worse_rounding

Check = tuple[str, Callable[[Any], str]]


# --- formatting helpers -------------------------------------------------------------------------


def minus(value: float, spec: str) -> str:
    """A number with a typographic minus sign, as the evidence writes it."""
    return format(float(value), spec).replace("-", "−")


def same(values: Any, spec: str = ".0f") -> str:
    """The one rounded value all `values` share (e.g. every row sum is 1), or a mismatch report."""
    shown = {format(float(value), spec) for value in np.ravel(values)}
    return shown.pop() if len(shown) == 1 else f"not all equal: {sorted(shown)}"


def bound(value: float, limit: str, noise: float) -> str:
    """Float32 rounding residue is quoted as a bound, since its exact size depends on the CPU's kernels:
    the residue must be below it, and so must `noise`, the most that rounding can make of it on any CPU
    (kqv_demo.numerics), or the quote would only hold on CPUs like this one."""
    if float(value) > float(limit):
        return f"{float(value):.2e}, above {limit}"
    return limit if noise <= float(limit) else f"{limit}, below the float32 bound {noise:.1e}"


def label(text: str) -> Check:
    """A number that names something (token 0, the 90% share) rather than being measured."""
    return text, lambda result: text


def times(shape: tuple[int, ...] | list[int]) -> str:
    return " × ".join(str(n) for n in shape)


# --- per-demo pieces ----------------------------------------------------------------------------


def square(result: Any) -> str:  # attention by hand: T × T
    n = len(result.tokens)
    return f"{n} × {n}"


def row_sums(result: Any) -> str:
    return same(result.model_weights.sum(-1))


def middle_updates(result: Any) -> str:  # fixed depth: layers 3-19, both prompts
    middle = result.relative_update[:, 3:20]
    return f"Layers 3 to 19 change {{}} by {middle.min():.2f} to {middle.max():.2f}"


def last_updates(result: Any) -> str:
    last = result.relative_update[:, -1]
    return f"the last layer by {last[0]:.2f} and {last[1]:.2f}"


def all_layers_once(result: Any) -> str:
    once = result.blocks_run == [result.n_layers] * 2 and bool((result.calls_per_layer == 1).all())
    return "exactly once" if once else "not exactly once"


def peak_after_two(result: Any) -> str:
    peaks = {int(np.argmax(row[2:])) + 2 for row in result.relative_update}
    return f"the biggest change comes at layer {peaks.pop()}" if len(peaks) == 1 else f"peaks differ: {peaks}"


def one_pass(result: Any) -> bool:
    return bool((result.attention_calls == 1).all() and (result.mlp_calls == 1).all())


def kv_groups(result: Any) -> str:
    groups = [[h for h in range(result.n_heads) if result.kv_head_of[h] == g] for g in range(result.n_kv_heads)]
    if any(group != list(range(group[0], group[-1] + 1)) for group in groups):
        return f"groups are not ranges: {groups}"
    spans = [f"{group[0]}–{group[-1]}" for group in groups]
    return f"query heads {', '.join(spans[:-1])} and {spans[-1]} each share one"


def bank_state(result: Any) -> str:
    # Exact on every CPU: both sentences have the same number of tokens, so the two passes run the same
    # kernels on the same shapes, and the later tokens get attention weight exactly 0 (see the demo's test).
    unchanged = result.same_prefix and result.smollm2_max_abs_diff == 0
    return f"{'bit-identical' if unchanged else 'changed'} at all {len(result.smollm2_diff_by_layer)} layers"


def lens_late(result: Any) -> str:
    p = result.p_target
    return (
        f"P(“{result.target.strip()}”) is {p[26]:.4f} after 26 layers, {p[27]:.4f} after 27, {p[28]:.3f} after 28 "
        f"and {p[29]:.3f} after 29, and reaches {p[30]:.2f} only after all {result.n_layers}"
    )


def lens_first_top(result: Any) -> str:
    first = result.target_top1_from
    never_before = first is not None and result.target not in result.top_tokens[:first]
    return (f"after all {first}, the {'first' if never_before else 'not the first'} point where "
            f"“{result.target.strip()}”")


def hundreds(value: float) -> str:
    """A norm in the thousands, to the nearest hundred: its last digits move with the CPU's rounding."""
    return f"{round(float(value), -2):,.0f}"


def sink_norm(result: Any) -> str:
    first = result.massive_layers[0]
    return (
        f"jumps to norm about {hundreds(result.norm_token0[first])} after layer {first} (counting from 0; the "
        f"others' median is {result.norm_others_median[first]:,.0f})"
    )


def sink_fall(result: Any) -> str:
    norms = result.norm_token0
    falls = norms[-3] > norms[-2] > norms[-1]
    return (f"then {'falls' if falls else 'does not fall'} to about {hundreds(norms[-2])} and {hundreds(norms[-1])} "
            "in the last two layers")


def ranking(result: Any) -> str:
    order = {name: i for i, name in enumerate(result.candidates)}
    parts = [
        f"{minus(result.candidate_logprobs[order[name]], '.2f')} for “{name}”" for name in result.model_ranking
    ]
    last = result.model_ranking[-1]
    pieces = len(result.candidate_tokens[order[last]])
    return f"log P (in nats) is {', '.join(parts[:-1])} and {parts[-1]}, which takes {pieces} tokens"


def same_shape(shapes: list[tuple[int, ...]]) -> str:
    distinct = {tuple(shape) for shape in shapes}
    return times(distinct.pop()) if len(distinct) == 1 else f"shapes differ: {distinct}"


def kv_steps(result: Any) -> str:
    first, *rest = [f"“{token.strip()}” {p:.2f}" for token, p in zip(result.generated, result.probabilities)]
    first = first.replace("” ", "” with ", 1)
    return f"{first}, then {', '.join(rest[:-1])} and {rest[-1]}"


def neuron_neighbours(result: Any) -> str:
    last = len(result.tokens) - 1
    others = [i for i in result.top_positions(3) if i != last][:2]
    return " and ".join(f"“{result.tokens[i].strip()}” ({result.top_neuron_by_token[i]:.2f})" for i in others)


def depth_of(result: Any, model: str) -> int:
    return dict(zip(result.models, result.layers))[model]


# --- the table: claim id -> [(text as it appears in the evidence, result -> that text)] ---------

EVIDENCE_NUMBERS: dict[str, list[Check]] = {
    # Attention by hand
    "dot-product-against-internal-keys": [
        ("(layer 0, head 0)", lambda r: f"(layer {r.layer}, head {r.head})"),
        ("divided by √64 = 8", lambda r: f"divided by √{r.d_head} = {math.sqrt(r.d_head):g}"),
        ("SmolLM2's 11 × 11 weights", lambda r: f"SmolLM2's {square(r)} weights"),
        ("largest difference below 0.001",
         lambda r: f"largest difference below {bound(r.max_abs_diff, '0.001', r.tolerance)}"),
        ("the sentence's 11 tokens", lambda r: f"the sentence's {len(r.tokens)} tokens"),
        ("above the diagonal is exactly 0",
         lambda r: f"above the diagonal is exactly {r.upper_triangle_max:g}"),
    ],
    "keys-act-as-queries-over-values": [
        ("(layer 3, head 4)", lambda r: f"(layer {r.layer}, head {r.head})"),
        ("the 11 × 11 weight matrix", lambda r: f"the {square(r)} weight matrix"),
        ("largest difference below 0.001",
         lambda r: f"largest difference below {bound(r.max_abs_diff, '0.001', r.tolerance)}"),
        ("Query head 4 takes its keys from key/value head 1",
         lambda r: f"Query head {r.head} takes its keys from key/value head {r.kv_head}"),
    ],
    "keys-boosted-by-training-frequency-and-heuristics": [
        ("(layer 5, head 4)", lambda r: f"(layer {r.layer}, head {r.head})"),
        ("divided by √64", lambda r: f"divided by √{r.d_head}"),
        ("largest difference below 0.001",
         lambda r: f"largest difference below {bound(r.max_abs_diff, '0.001', r.tolerance)}"),
        ("Each row sums to 1", lambda r: f"Each row sums to {row_sums(r)}"),
        ("above the diagonal is exactly 0",
         lambda r: f"above the diagonal is exactly {r.upper_triangle_max:g}"),
    ],
    "queries-and-keys-are-not-compared-one-to-one": [
        ("(layer 3, head 0)", lambda r: f"(layer {r.layer}, head {r.head})"),
        ("the 11 × 11 matrix so that it sums to 1",
         lambda r: f"the {square(r)} matrix so that it sums to {row_sums(r)}"),
        ("largest difference below 0.001",
         lambda r: f"largest difference below {bound(r.max_abs_diff, '0.001', r.tolerance)}"),
        ("a positive weight to all 11 positions",
         lambda r: f"a positive weight to {'all' if (r.model_weights[-1] > 0).all() else 'only'} "
                   f"{int((r.model_weights[-1] > 0).sum())} positions"),
    ],
    "softmax-turns-scores-into-attention-distribution": [
        ("(layer 5, head 3)", lambda r: f"(layer {r.layer}, head {r.head})"),
        ("by √64 = 8", lambda r: f"by √{r.d_head} = {math.sqrt(r.d_head):g}"),
        ("largest difference below 0.001",
         lambda r: f"largest difference below {bound(r.max_abs_diff, '0.001', r.tolerance)}"),
        ("Every row of weights sums to 1", lambda r: f"Every row of weights sums to {row_sums(r)}"),
        ("above the diagonal is exactly 0",
         lambda r: f"above the diagonal is exactly {r.upper_triangle_max:g}"),
        ("Query head 3 reads key/value head 1, shared with 2 other query heads",
         lambda r: f"Query head {r.head} reads key/value head {r.kv_head}, shared with {r.heads_per_kv_head - 1} "
                   "other query heads"),
    ],
    # Dot product, not KL divergence
    "kl-divergence-compares-queries-and-keys": [
        ("(layer 5, head 0)", lambda r: f"(layer {r.layer}, head {r.head})"),
        ("56% negative entries", lambda r: f"{r.query_negative_fraction:.0%} negative entries"),
        ("they sum to −12.99", lambda r: f"they sum to {minus(r.query_sum, '.2f')}"),
        ("the keys are 45% negative", lambda r: f"the keys are {r.keys_negative_fraction:.0%} negative"),
        ("That token's attention weights equal softmax(q·k/√d) to within 0.001",
         lambda r: f"That token's attention weights equal softmax(q·k/√d) to within "
                   f"{bound(r.dot_product_max_diff, '0.001', r.dot_product_tolerance)}"),
        ("misses by up to 0.24", lambda r: f"misses by up to {r.kl_max_diff:.2f}"),
    ],
    "keys-are-means-queries-are-interactions": [
        ("(layer 5, head 0)", lambda r: f"(layer {r.layer}, head {r.head})"),
        ("each of the 12 tokens' own keys", lambda r: f"each of the {len(r.key_tokens)} tokens' own keys"),
        ("to within 0.001", lambda r: f"to within {bound(r.dot_product_max_diff, '0.001', r.dot_product_tolerance)}"),
        ("sum to −12.99", lambda r: f"sum to {minus(r.query_sum, '.2f')}"),
        ("off by up to 0.24", lambda r: f"off by up to {r.kl_max_diff:.2f}"),
    ],
    "kl-divergence-is-a-plain-average-of-log-ratios": [
        ("is −0.0215", lambda r: f"is {minus(r.example.plain_average_of_logs, '.4f')}"),
        ("D(Q‖K) = 0.0946 nats", lambda r: f"D(Q‖K) = {r.example.kl_nats:.4f} nats"),
        ("D(K‖Q) = 0.1069 nats", lambda r: f"D(K‖Q) = {r.example.reverse_kl_nats:.4f} nats"),
    ],
    "queries-and-keys-are-probability-distributions": [
        ("(layer 5, head 0)", lambda r: f"(layer {r.layer}, head {r.head})"),
        ("as low as −8.53, 56% of them negative", lambda r: f"as low as {minus(r.query_min, '.2f')}, "
                                                           f"{r.query_negative_fraction:.0%} of them negative"),
        ("sum to −12.99", lambda r: f"sum to {minus(r.query_sum, '.2f')}"),
        ("the keys are 45% negative", lambda r: f"the keys are {r.keys_negative_fraction:.0%} negative"),
        ("each of the 12 positions", lambda r: f"each of the {len(r.model_weights)} positions"),
        ("to within 0.001", lambda r: f"to within {bound(r.dot_product_max_diff, '0.001', r.dot_product_tolerance)}"),
    ],
    "worked-kl-example-gives-0-135": [
        ("ln 1.25 is 0.2231", lambda r: f"ln {math.exp(r.example.ln_1_25):.2f} is {r.example.ln_1_25:.4f}"),
        ("not 0.221", lambda r: f"not {r.example.dialogue_ln_1_25:g}"),
        ("D(Q‖K) is 0.0946 nats, or 0.1365 bits",
         lambda r: f"D(Q‖K) is {r.example.kl_nats:.4f} nats, or {r.example.kl_bits:.4f} bits"),
        ("add up to 0.0934", lambda r: f"add up to {r.example.dialogue_terms_sum:.4f}"),
        ("its 0.135", lambda r: f"its {r.example.dialogue_result:g}"),
        ("dot product, 0.34", lambda r: f"dot product, {r.example.dot_product:.2f}"),
    ],
    # A soft lookup, not a database
    "best-matching-keys-get-activated": [
        ("(layer 3, head 8)", lambda r: f"(layer {r.layer}, head {r.head})"),
        ("scores all 11 keys", lambda r: f"scores all {len(r.tokens)} keys"),
        ("the smallest 0.048", lambda r: f"the smallest {r.min_weight:.3f}"),
        ("“tired”, gets only 0.239",
         lambda r: f"“{r.top_token.strip()}”, gets only {r.model_weights.max():.3f}"),
        ("9 tokens are needed to hold 90% of the weight",
         lambda r: f"{r.tokens_for_90} tokens are needed to hold {MASS:.0%} of the weight"),
        ("all 11 value vectors", lambda r: f"all {len(r.tokens)} value vectors"),
        ("multiplied by 16 would the top key take 0.9999",
         lambda r: next(f"multiplied by {beta:g} would the top key take {weight:.4f}"
                        for beta, weight in zip(r.betas, r.sweep_max_weight) if round(weight, 4) >= 0.9999)),
    ],
    "nosql-keys-immutable-and-o1-lookup": [
        ("(layer 3, head 8)", lambda r: f"(layer {r.layer}, head {r.head})"),
        ("finds store[' tired'] in one step (position 9)",
         lambda r: f"finds store[{r.dict_hit_key!r}] in one step (position {r.dict_hit_value})"),
        ("raises KeyError for the near-miss key 'tired'",
         lambda r: f"raises {r.dict_miss_error.split(':')[0]} for the near-miss key {r.dict_miss_key!r}"),
        ("against all 11 keys", lambda r: f"against all {len(r.tokens)} keys"),
        ("the smallest 0.048", lambda r: f"the smallest {r.min_weight:.3f}"),
    ],
    "nosql-means-non-sql-compliant": [
        ("(layer 3, head 8)", lambda r: f"(layer {r.layer}, head {r.head})"),
        ("the keys of all 11 tokens", lambda r: f"the keys of all {len(r.tokens)} tokens"),
        ("all 11 value vectors", lambda r: f"all {len(r.tokens)} value vectors"),
        ("with weights from 0.048 to 0.239",
         lambda r: f"with weights from {r.model_weights.min():.3f} to {r.model_weights.max():.3f}"),
    ],
    "nosql-queries-never-aggregate": [
        ("(layer 3, head 8)", lambda r: f"(layer {r.layer}, head {r.head})"),
        ("every one of the 11 value vectors", lambda r: f"every one of the {len(r.tokens)} value vectors"),
        ("(the smallest 0.048, all of them summing to 1)",
         lambda r: f"(the smallest {r.min_weight:.3f}, all of them summing to {r.weight_sum:.0f})"),
        ("entropy is 3.25 bits", lambda r: f"entropy is {r.entropy_bits:.2f} bits"),
        ("the 3.46 bits of a plain average over all 11",
         lambda r: f"the {r.uniform_entropy_bits:.2f} bits of a plain average over all {len(r.tokens)}"),
    ],
    "slides-are-about-nosql-databases": [
        ("(layer 3, head 8)", lambda r: f"(layer {r.layer}, head {r.head})"),
        ("Layer 3 holds 9 × 11 queries and 3 × 11 keys and values of 64 numbers each",
         lambda r: f"Layer {r.layer} holds {times(r.q_shape[:2])} queries and {times(r.k_shape[:2])} keys and values "
                   f"of {r.d_head if r.v_shape == r.k_shape and r.q_shape[2] == r.d_head else '?'} numbers each"),
        ("scores all 11 keys and blends all 11 values",
         lambda r: f"scores all {len(r.tokens)} keys and blends all {len(r.tokens)} values"),
        ("with weights from 0.048 to 0.239",
         lambda r: f"with weights from {r.model_weights.min():.3f} to {r.model_weights.max():.3f}"),
    ],
    # Keys are computed, not stored
    "keys-are-stored-concept-vectors": [
        ("at layer 0 the key of “bank” is the same in both sentences (cosine 1.000)",
         lambda r: f"at layer 0 the key of “{r.word.strip()}” is the same in both sentences "
                   f"(cosine {same(r.cosine_by_layer[0], '.3f')})"),
        ("at layer 10 the 3 key/value heads give cosines of 0.91, 0.94 and 0.86",
         lambda r: f"at layer {r.layer} the {r.n_kv_heads} key/value heads give cosines of "
                   + ", ".join(f"{c:.2f}" for c in r.cosine_by_layer[r.layer][:-1])
                   + f" and {r.cosine_by_layer[r.layer][-1]:.2f}"),
        ("the lowest at any layer is 0.60",
         lambda r: f"the lowest at any layer is {r.cosine_by_layer.min():.2f}"),
        ("a 192 × 576 matrix W_K",
         lambda r: f"a {same_shape(r.key_weight_shapes)} matrix W_K"),
        ("the first sentence's 6 tokens produced exactly 540 keys",
         lambda r: f"the first sentence's {r.tokens_in_a} tokens produced exactly {r.keys_in_a} keys"),
    ],
    # One query per token, per head, per layer
    "prompt-encoded-as-one-query-vector": [
        ("the 7-token prompt", lambda r: f"the {r.n_tokens}-token prompt"),
        ("compute 1,890 query vectors", lambda r: f"compute {r.queries:,} query vectors"),
        ("7 tokens × 30 layers × 9 query heads, each a list of 64 numbers",
         lambda r: f"{r.n_tokens} tokens × {r.n_layers} layers × {r.n_heads} query heads, "
                   f"each a list of {r.d_head} numbers"),
        ("produces 630 keys and 630 values", lambda r: f"produces {r.keys:,} keys and {r.values:,} values"),
    ],
    "llms-do-not-use-database-style-kqv": [
        ("layer 0 records queries of shape 9 × 7 × 64 and keys and values of shape 3 × 7 × 64",
         lambda r: f"layer 0 records queries of shape {times(r.query_shape)} and keys and values of shape "
                   + (times(r.key_shape) if r.key_shape == r.value_shape else "different shapes")),
        ("each of the 7 tokens", lambda r: f"each of the {r.n_tokens} tokens"),
        ("W_Q (576 × 576), W_K and W_V (192 × 576)",
         lambda r: f"W_Q ({times(r.projection_shapes[0])}), W_K and W_V "
                   + (f"({times(r.projection_shapes[1])})" if r.projection_shapes[1] == r.projection_shapes[2]
                      else "(differ)")),
        ("Over all 30 layers that is 1,890 queries, 630 keys and 630 values",
         lambda r: f"Over all {r.n_layers} layers that is {r.queries:,} queries, {r.keys:,} keys "
                   f"and {r.values:,} values"),
    ],
    "prompt-acts-as-key-and-query": [
        ("each of the 7 prompt tokens", lambda r: f"each of the {r.n_tokens} prompt tokens"),
        ("1,890 queries and 630 keys and 630 values",
         lambda r: f"{r.queries:,} queries and {r.keys:,} keys and {r.values:,} values"),
        ("(9 query heads and 3 key/value heads per layer)",
         lambda r: f"({r.n_heads} query heads and {r.n_kv_heads} key/value heads per layer)"),
    ],
    # Values are vectors; the text comes from the LM head
    "attention-weights-combine-key-vectors": [
        ("(layer 3, query head 4, which reads key/value head 1)",
         lambda r: f"(layer {r.layer}, query head {r.head}, which reads key/value head {r.kv_head})"),
        ("to within 0.00001", lambda r: f"to within {bound(r.weights_v_max_diff, '0.00001', r.weights_v_tolerance)}"),
        ("miss it by up to 7.42", lambda r: f"miss it by up to {r.weights_k_max_diff:.2f}"),
        ("ranges from 5.33 to 8.09",
         lambda r: f"ranges from {r.layer_weights_k_min_diff:.2f} to {r.layer_weights_k_max_diff:.2f}"),
    ],
    "attention-output-is-weighted-sum-of-inputs": [
        ("(layer 3, query head 4)", lambda r: f"(layer {r.layer}, query head {r.head})"),
        ("(largest difference below 0.00001)",
         lambda r: f"(largest difference below {bound(r.weights_v_max_diff, '0.00001', r.weights_v_tolerance)})"),
        ("(off by up to 7.42)", lambda r: f"(off by up to {r.weights_k_max_diff:.2f})"),
        ("lists of 64 numbers, not the 576-number token states",
         lambda r: f"lists of {r.d_head} numbers, not the {r.hidden_size}-number token states"),
        ("all 10 prompt tokens: 900 of them over 30 layers",
         lambda r: f"all {len(r.tokens)} prompt tokens: {r.values_in_prompt:,} of them over {r.n_layers} layers"),
    ],
    "model-queries-its-weights-for-answers": [
        ("final hidden state, 576 numbers", lambda r: f"final hidden state, {r.hidden_size} numbers"),
        ("each of the 49,152 vocabulary tokens", lambda r: f"each of the {r.vocab_size:,} vocabulary tokens"),
        # two products of the same numbers (the demo's and the model's): other kernels, so a bound
        ("matching the model's own scores (difference below 0.001)",
         lambda r: "matching the model's own scores (difference below "
                   f"{bound(r.logits_max_diff, '0.001', numerics.LOGIT_NOISE)})"),
        ("the most likely next token is “Paris”, at 0.70",
         lambda r: f"the most likely next token is “{r.chosen_token.strip()}”, at {r.chosen_probability:.2f}"),
    ],
    "output-text-is-the-value": [
        ("lists of 64 numbers that exist for all 10 prompt tokens",
         lambda r: f"lists of {r.d_head} numbers that exist for all {len(r.tokens)} prompt tokens"),
        ("900 of them over 30 layers", lambda r: f"{r.values_in_prompt:,} of them over {r.n_layers} layers"),
        ("each of the 49,152 vocabulary tokens", lambda r: f"each of the {r.vocab_size:,} vocabulary tokens"),
        ("makes “Paris” the most likely, at 0.70",
         lambda r: f"makes “{r.chosen_token.strip()}” the most likely, at {r.chosen_probability:.2f}"),
    ],
    # Heads run side by side, once
    "heads-chain-query-to-next-head": [
        ("(layer 0)", lambda r: f"(layer {r.layer})"),
        ("attention runs 1 time and returns all 9 heads",
         lambda r: f"attention runs {r.attention_calls} time and returns all {r.out_shape[1]} heads"),
        ("matches that call's output for the head to within 0.001",
         lambda r: f"matches that call's output for the head to within "
                   f"{bound(r.separate_heads_max_diff, '0.001', r.separate_heads_tolerance)}"),
        ("differs from the model's result by less than 0.001",
         lambda r: "differs from the model's result by less than "
                   f"{bound(r.order_invariance, '0.001', r.rounding_tolerance)}"),
        ("values up to 2.4", lambda r: f"values up to {r.result_max_abs:.1f}"),
    ],
    "key-value-store-writes-go-to-all-replicas": [
        ("(layer 0)", lambda r: f"(layer {r.layer})"),
        ("The 9 query heads run together in 1 call but read just 3 key/value heads",
         lambda r: f"The {r.n_heads} query heads run together in {r.attention_calls} call but read just "
                   f"{len(set(r.kv_head_of))} key/value heads"),
        ("query heads 0–2, 3–5 and 6–8 each share one", kv_groups),
        ("the largest weight difference is 0.21 to 0.97",
         lambda r: f"the largest weight difference is {min(r.sharing_pattern_diffs):.2f} to "
                   f"{max(r.sharing_pattern_diffs):.2f}"),
    ],
    # Causal decoder vs bidirectional encoder
    "bert-uses-left-and-right-context": [
        ("every SmolLM2 weight above the diagonal (layer 6, head 8) is exactly 0",
         lambda r: f"every SmolLM2 weight above the diagonal (layer {r.layer}, head {r.head}) "
                   f"is exactly {r.smollm2_upper_max:g}"),
        ("puts a total of 5.15 of weight above it in its layer 1, head 8",
         lambda r: f"puts a total of {r.minilm_upper_sum:.2f} of weight above it in its layer {r.minilm_layer}, "
                   f"head {r.minilm_head}"),
        ("bit-identical at all 30 layers", bank_state),
        ("(cosine 0.85)", lambda r: f"(cosine {r.minilm_cosine:.2f})"),
    ],
    "bert-outputs-contextual-embeddings": [
        # two decimals: 0.8467 is within rounding (2·STATE_NOISE) of where 0.847 turns into 0.846
        ("cosine 0.97 after its first layer and 0.85 after its last",
         lambda r: f"cosine {r.minilm_cosine_by_layer[0]:.2f} after its first layer "
                   f"and {r.minilm_cosine:.2f} after its last"),
        ("bit-identical at all 30 layers", bank_state),
    ],
    "llms-are-based-on-bert": [
        ("exactly 0 (layer 6, head 8)",
         lambda r: f"exactly {r.smollm2_upper_max:g} (layer {r.layer}, head {r.head})"),
        ("puts a total of 5.15 of weight above the diagonal in its layer 1, head 8",
         lambda r: f"puts a total of {r.minilm_upper_sum:.2f} of weight above the diagonal "
                   f"in its layer {r.minilm_layer}, head {r.minilm_head}"),
        ("bit-identical at all 30 layers", bank_state),
        ("(cosine 0.85)", lambda r: f"(cosine {r.minilm_cosine:.2f})"),
    ],
    "bert-introduced-contextual-pretraining": [
        ("puts a total of 5.15 of weight above the diagonal (tokens reading later tokens) in its layer 1, head 8",
         lambda r: f"puts a total of {r.minilm_upper_sum:.2f} of weight above the diagonal "
                   f"(tokens reading later tokens) in its layer {r.minilm_layer}, head {r.minilm_head}"),
        ("has exactly 0 there (layer 6, head 8)",
         lambda r: f"has exactly {r.smollm2_upper_max:g} there (layer {r.layer}, head {r.head})"),
        ("(cosine 0.85)", lambda r: f"(cosine {r.minilm_cosine:.2f})"),
    ],
    # Every prompt runs all 30 layers, once
    "number-of-layers-is-decided-dynamically": [
        ("all 30 of SmolLM2's layers, each exactly once",
         lambda r: f"all {r.n_layers} of SmolLM2's layers, each {all_layers_once(r)}"),
        ("give 31 hidden states each", lambda r: f"give {same(r.hidden_states)} hidden states each"),
        ("MiniLM runs its 6 layers for both",
         lambda r: f"MiniLM runs its {r.minilm_layers if r.minilm_blocks_run == [r.minilm_layers] * 2 else '?'} "
                   "layers for both"),
    ],
    "transformers-have-a-fixed-number-of-layers": [
        ("SmolLM2 runs 30 blocks for “The capital of France is” and 30 for “The bank was”, each block exactly once",
         lambda r: f"SmolLM2 runs {r.blocks_run[0]} blocks for “{r.prompts[0]}” and {r.blocks_run[1]} for "
                   f"“{r.prompts[1]}”, each block {all_layers_once(r)}"),
        ("returns 31 hidden states per prompt",
         lambda r: f"returns {same(r.hidden_states)} hidden states per prompt"),
        ("MiniLM runs 6 blocks for each",
         lambda r: f"MiniLM runs {same(r.minilm_blocks_run)} blocks for each"),
        ("the same 3,540,096 weights", lambda r: f"the same {r.params_per_layer:,} weights"),
        ("Layers 3 to 19 change the hidden state by 0.17 to 0.33",
         lambda r: middle_updates(r).format("the hidden state")),
        ("the last layer by 0.60 and 0.63", last_updates),
    ],
    "refined-query-vector-passes-between-layers": [
        ("Layers 3 to 19 change it by 0.17 to 0.33", lambda r: middle_updates(r).format("it")),
        ("the last layer by 0.60 and 0.63", last_updates),
        ("the biggest change comes at layer 24", peak_after_two),
        ("Each of the 30 layers has its own 3,540,096 weights",
         lambda r: f"Each of the {r.n_layers} layers has its own {r.params_per_layer:,} weights"),
    ],
    # Attention runs once per layer; there is no loop inside a layer
    "attention-iterates-within-each-layer": [
        ("the 12 tokens", lambda r: f"the {r.n_tokens} tokens"),
        ("each of the 30 layers ran its attention exactly once, all 9 heads in one call, and its MLP once",
         lambda r: f"each of the {r.n_layers} layers ran its attention {'exactly' if one_pass(r) else 'not'} once, "
                   f"all {r.pattern_shape[0]} heads in one call, and its MLP once"),
        # exact on every CPU: the same three tensors added in the same order as the model adds them
        ("to the last bit (difference 0)",
         lambda r: f"to the last bit (difference {r.residual_max_diff.max():g})"),
        ("the next layer's input is exactly that output",
         lambda r: f"the next layer's input is {'exactly' if r.handoff_max_diff == 0 else 'not'} that output"),
    ],
    "transformers-are-built-on-self-attention": [
        ("each of the 30 layers makes one self-attention call, all 9 heads at once over the 12 tokens",
         lambda r: f"each of the {r.n_layers} layers makes {'one' if one_pass(r) else 'not one'} self-attention call, "
                   f"all {r.pattern_shape[0]} heads at once over the {r.n_tokens} tokens"),
        ("(weights of shape 9 × 12 × 12)", lambda r: f"(weights of shape {times(r.pattern_shape)})"),
        ("(difference 0)", lambda r: f"(difference {r.residual_max_diff.max():g})"),
    ],
    # Reading the residual stream layer by layer; where KL really belongs
    "later-layers-barely-change-the-representation": [
        ("P(“Paris”) is 0.0000 after 26 layers, 0.0003 after 27, 0.011 after 28 and 0.070 after 29, and reaches "
         "0.77 only after all 30", lens_late),
        ("after all 30, the first point where “Paris”", lens_first_top),
        ("“after 30” means the output of the last block, which the app's layer settings call layer 29",
         lambda r: f"“after {r.n_layers}” means the output of the last block, which the app's layer settings call "
                   f"layer {r.n_layers - 1}"),
    ],
    "comparing-layers-to-exit-early-is-a-future-idea": [
        ("exceeds 0.9", lambda r: f"exceeds {r.exit_threshold:g}"),
        ("(at 4 of 5 positions)", lambda r: f"(at {r.embedding_matches} of {len(r.tokens)} positions)"),
        ("the rule would stop at once",
         lambda r: f"the rule would {'stop at once' if r.exit_from_embeddings == 0 else 'not stop at once'}"),
        ("counted from layer 1, it stops after 20 layers with a space, not the full model's “Paris”",
         lambda r: f"counted from layer 1, it stops after {r.exit_layer} layers with "
                   f"{'a space' if r.exit_token == ' ' else repr(r.exit_token)}, "
                   f"{'like' if r.exit_agrees else 'not'} the full model's “{r.model_top_token.strip()}”"),
        ("only after all 30 layers (probability 0.77)",
         lambda r: f"only after all {r.target_top1_from} layers (probability {r.p_target[-1]:.2f})"),
    ],
    "final-query-vector-activates-concept-nodes": [
        ("after all 30 layers reproduces the model's own output scores (largest difference below 0.001)",
         lambda r: f"after all {r.n_layers} layers reproduces the model's own output scores "
                   f"(largest difference below {bound(r.lens_max_diff, '0.001', numerics.LOGIT_NOISE)})"),
        ("“Paris” probability 0.77",
         lambda r: f"“{r.model_top_token.strip()}” probability {r.model_p_target:.2f}"),
    ],
    "interpretability-research-areas": [
        ("probability 0.011 after 28 layers, 0.77 after 30",
         lambda r: f"probability {r.p_target[28]:.3f} after 28 layers, {r.p_target[-1]:.2f} after {r.n_layers}"),
        ("skipping block 15 (counting from 0) lowers it to 0.634, a change of 0.286 nats",
         lambda r: f"skipping block {r.skip_layer} (counting from 0) "
                   f"{'lowers' if r.p_target_skipped < r.model_p_target else 'raises'} it to "
                   f"{r.p_target_skipped:.3f}, a change of {r.kl_skip_nats:.3f} nats"),
    ],
    "kl-divergence-measures-difference-between-distributions": [
        ("skipping block 15 (counting from 0)", lambda r: f"skipping block {r.skip_layer} (counting from 0)"),
        ("from 0.77 to 0.634", lambda r: f"from {r.model_p_target:.2f} to {r.p_target_skipped:.3f}"),
        ("is 0.286 nats", lambda r: f"is {r.kl_skip_nats:.3f} nats"),
    ],
    # Attention maps are weak explanations
    "attention-maps-reveal-reasoning": [
        ("183 and 165 of SmolLM2's 270 heads (68% and 61%)",
         lambda r: f"{r.count_a} and {r.count_b} of SmolLM2's {r.n_heads} heads "
                   f"({r.count_a / r.n_heads:.0%} and {r.count_b / r.n_heads:.0%})"),
        ("more than half their weight on token 0",
         lambda r: f"more than {'half' if r.threshold == 0.5 else r.threshold} their weight on token 0"),
        ("only 154 do so for both", lambda r: f"only {r.count_both} do so for both"),
        label("Token 0's hidden state"),
        ("jumps to norm about 22,700 after layer 11 (counting from 0; the others' median is 119)", sink_norm),
        ("then falls to about 8,400 and 5,000 in the last two layers", sink_fall),
    ],
    # The model's confidence is readable
    "llms-cannot-report-confidence-scores": [
        ("gives “Paris” probability 0.77",
         lambda r: f"gives “{r.top_tokens[0].strip()}” probability {r.top_probs[0]:.2f}"),
        ("its 49,152-token vocabulary", lambda r: f"its {r.vocab_size:,}-token vocabulary"),
        ("entropy of that distribution is 2.14 bits",
         lambda r: f"entropy of that distribution is {r.entropy_bits:.2f} bits"),
        ("the 10 most likely tokens hold 0.90 of the probability",
         lambda r: f"the {r.nucleus_size_at_t1} most likely tokens hold {r.nucleus_mass:.2f} of the probability"),
    ],
    "prompting-for-ranked-answers-by-probability": [
        ("log P (in nats) is −0.26 for “Paris”, −7.15 for “Lyon” and −10.43 for “Marseille”, which takes 3 tokens",
         ranking),
    ],
    # Context changes predictions (the “pre-queries”)
    "pre-queries-guide-model-to-right-keys": [
        ("is 0.77; with", lambda r: f"is {r.p_plain:.2f}; with"),
        ("it is 0.97, with the same weights", lambda r: f"it is {r.p_prefix:.2f}, with the same weights"),
        ("about a cat it is 0.70", lambda r: f"about a cat it is {r.p_distractor:.2f}"),
        ("The prefix's 14 tokens add 42 keys and 42 values in each of the 30 layers",
         lambda r: f"The prefix's {r.helpful.prefix_tokens} tokens add {r.added_keys_per_layer} keys and "
                   f"{r.added_values_per_layer} values in each of the {r.n_layers} layers"),
        label("not park on token 0"),
        ("47% goes to them", lambda r: f"{r.helpful.prefix_share:.0%} goes to them"),
    ],
    # Nothing is learned during a chat
    # Different objectives, the same neighbours
    "concepts-come-entirely-from-pretraining": [
        ("on 25 words in five groups", lambda r: f"on {r.n_items} words in {len(r.group_labels)} groups".replace(
            " 5 groups", " five groups")),
        ("share 99% of each word's 4 nearest neighbours (SmolLM2 after layer 15)",
         lambda r: f"share {r.alignment:.0%} of each word's {r.k} nearest neighbours (SmolLM2 after layer {r.layer})"),
        ("against 31% at the 99th percentile of chance and 8% for",
         lambda r: f"against {r.chance_p99:.0%} at the 99th percentile of chance and {r.spelling_alignment:.0%} for"),
    ],
    "model-learns-from-feedback-during-conversation": [
        ("with “The capital of Australia is Canberra.”", lambda r: f"with “{' '.join(r.reply.split())}”"),
        ("all 272 weight tensors (134,515,008 parameters) after the reply are identical to those taken at load",
         lambda r: f"all {r.n_tensors} weight tensors ({r.n_parameters:,} parameters) after the reply are "
                   f"{'identical' if r.weights_unchanged else 'different'} to those taken at load"),
        # two decimals: a pass's rounding can move 0.3413 by 4e-4 on another CPU (tests/demos/test_no_learning.py);
        # "unchanged" is exact on every CPU: the same pass on the same weights, compared bit for bit
        ("is 0.34 at load and unchanged after the reply",
         lambda r: f"is {r.p_at_load:.2f} at load and "
                   f"{'unchanged' if r.p_after == r.p_at_load else f'{r.p_after:.2f}'} after the reply"),
        ("in the context, 0.84", lambda r: f"in the context, {r.p_in_context:.2f}"),
        ("from 44 to 51 positions",
         lambda r: f"from {r.cache_lengths[0]} to {r.cache_lengths[-1]} positions"),
    ],
    # Step-by-step generation with the KV cache
    "response-sampled-from-primed-representations": [
        ("for 4 steps", lambda r: f"for {len(r.generated)} steps"),
        ("writes “Paris, France.”", lambda r: f"writes “{''.join(r.generated).strip()}”"),
        ("its 49,152-token vocabulary", lambda r: f"its {r.vocabulary_size:,}-token vocabulary"),
        ("“Paris” with 0.70, then “,” 0.60, “France” 0.90 and “.” 0.61", kv_steps),
        ("adds exactly one key and one value per key/value head",
         lambda r: f"adds {'exactly one' if r.consistent else 'not one'} key and "
                   f"{'one' if r.consistent else 'not one'} value per key/value head"),
        ("grows from 10 to 13 positions",
         lambda r: f"grows from {r.cache_lengths[0]} to {r.cache_lengths[-1]} positions"),
    ],
    # No biases, no concept switches
    "biases-switch-neurons-on-and-off": [
        ("none of SmolLM2's 272 weight tensors is a bias",
         lambda r: f"{'none' if not r.smollm2_bias_names else len(r.smollm2_bias_names)} of SmolLM2's "
                   f"{r.smollm2_tensors} weight tensors is a bias"),
        ("(attention_bias and mlp_bias are false)",
         lambda r: f"(attention_bias and mlp_bias are {str(r.attention_bias or r.mlp_bias).lower()})"),
        ("has 50 bias vectors", lambda r: f"has {len(r.minilm_bias_names)} bias vectors"),
        ("layer 15's 1,536 MLP neurons for “Paris”",
         lambda r: f"layer {r.layer}'s {r.d_mlp:,} MLP neurons for “{r.tokens[-1].strip()}”"),
        ("50% are negative, 10.7% are near zero and only 0.7% exceed 1",
         lambda r: f"{r.negative:.0%} are negative, {r.near_zero:.1%} are near zero "
                   f"and only {r.above_one:.1%} exceed 1"),
    ],
    "no-single-neuron-represents-a-concept": [
        ("the 214 strongest of layer 15's 1,536 MLP neurons to carry half of the activation mass, and 817 to "
         "carry 90%",
         lambda r: f"the {r.neurons_for_half[-1]} strongest of layer {r.layer}'s {r.d_mlp:,} MLP neurons to carry "
                   f"half of the activation mass, and {r.neurons_for_90[-1]} to carry 90%"),
        ("neuron 1302 (2.88)", lambda r: f"neuron {r.top_neuron} ({r.top_value:.2f})"),
        ("“city” (1.43) and “of” (1.28)", neuron_neighbours),
    ],
    # 12 layers is not a standard
    "layer-count-is-a-hyperparameter": [
        ("SmolLM2-135M has 30 layers, all-MiniLM-L6-v2 has 6",
         lambda r: f"SmolLM2-135M has {r.smollm2_layers} layers, all-MiniLM-L6-v2 has {r.minilm_layers}"),
        ("the same 3,540,096 weights (884,736 attention, 2,654,208 MLP, 1,152 norm)",
         lambda r: f"the same {r.smollm2_per_layer:,} weights ({r.smollm2_attention_per_layer:,} attention, "
                   f"{r.smollm2_mlp_per_layer:,} MLP, {r.smollm2_norm_per_layer:,} norm)"),
        ("Of its 134,515,008 parameters, the shared embedding holds 28,311,552",
         lambda r: f"Of its {r.smollm2_parameters:,} parameters, the "
                   f"{'shared' if r.smollm2_tied_embeddings else 'untied'} embedding holds "
                   f"{r.smollm2_embedding_parameters:,}"),
    ],
    "most-models-use-twelve-layers": [
        ("only 2 of its 10 models have 12 layers, BERT-base and GPT-2 small",
         lambda r: f"only {len(r.with_twelve)} of its {len(r.models)} models have 12 layers, "
                   f"{' and '.join(r.with_twelve)}"),
        ("Llama-3.1-405B has 126 and GPT-3 175B has 96",
         lambda r: f"Llama-3.1-405B has {depth_of(r, 'Llama-3.1-405B')} "
                   f"and GPT-3 175B has {depth_of(r, 'GPT-3 175B')}"),
        ("give 30 layers for SmolLM2-135M and 6 for all-MiniLM-L6-v2",
         lambda r: f"give {r.smollm2_layers} layers for SmolLM2-135M and {r.minilm_layers} for all-MiniLM-L6-v2"),
        label("12 is not a standard"),
    ],
}


# --- fixtures -----------------------------------------------------------------------------------

BANK = load_bank()
WITH_DEMO = sorted(claim_id for claim_id, claim in BANK.claims.items() if claim.demo is not None)

# A number standing on its own: not part of a name such as SmolLM2-135M, GPT-2 or all-MiniLM-L6-v2.
NUMBER = re.compile(r"(?<![\w.\-])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\w)")


# A citation's year or section ("Radford et al. 2018", "Vaswani et al. (2017)", "§6.2.2") names a source,
# it quotes no figure.
CITATION = re.compile(r"\bet al\.,? \(?(?:19|20)\d\d\)?|\((?:19|20)\d\d\)|§\s*[\d.]*\d")


def numbers_in(text: str) -> set[str]:
    return set(NUMBER.findall(CITATION.sub(" ", text)))


def inputs_removed(claim_id: str) -> str:
    """The evidence without the demo's title and the claim's input texts (their digits are not results)."""
    claim = BANK.claims[claim_id]
    demo = DEMOS[claim.demo.id]
    text = claim.refutation.evidence.replace(f"“{demo.title}”", "")
    given = [claim.demo.prompt or demo.default_prompt]
    given += [value for value in claim.demo.params.values() if isinstance(value, str)]
    for each in filter(None, given):
        text = text.replace(each, "")
    return text


@pytest.fixture(scope="module")
def results(runtime):
    """Demo results, one run per distinct (demo, prompt, params)."""
    cache: dict[str, Any] = {}

    def run(claim_id: str) -> Any:
        link = BANK.claims[claim_id].demo
        key = repr((link.id, link.prompt, sorted(link.params.items())))
        if key not in cache:
            cache[key] = DEMOS[link.id].run(runtime, link.prompt, **link.params)
        return cache[key]

    return run


# --- tests --------------------------------------------------------------------------------------


def test_the_bank_loads_and_the_table_names_real_claims_with_demos():
    assert BANK.ok, [str(error) for error in BANK.errors]
    assert set(EVIDENCE_NUMBERS) <= set(WITH_DEMO)


@pytest.mark.parametrize("claim_id", sorted(EVIDENCE_NUMBERS))
def test_quoted_numbers_are_what_the_demo_computes(claim_id: str, results):
    evidence = BANK.claims[claim_id].refutation.evidence
    result = results(claim_id)
    for text, rebuild in EVIDENCE_NUMBERS[claim_id]:
        assert text in evidence, f"{claim_id}: {text!r} is not in its evidence"
        assert rebuild(result) == text, f"{claim_id}: the demo gives {rebuild(result)!r}, the evidence says {text!r}"


# Claims whose figures compare with what was recorded when the model was loaded: a simulated CPU cannot
# re-run the load, so their figures' margins are checked in tests/demos/test_no_learning.py instead.
COMPARED_WITH_THE_LOAD = {"model-learns-from-feedback-during-conversation"}


@pytest.fixture(scope="module")
def results_on_a_worse_cpu(runtime, results):
    """The same demo runs on a simulated CPU with far worse rounding (tests.quoted.worse_rounding), each way."""
    cache: dict[tuple[int, str], Any] = {}

    def run(claim_id: str, sign: int) -> Any:
        results(claim_id)  # the clean run first: the perturbation is switched on only for this one
        link = BANK.claims[claim_id].demo
        key = (sign, repr((link.id, link.prompt, sorted(link.params.items()))))
        if key not in cache:
            with worse_rounding(runtime, sign):
                cache[key] = DEMOS[link.id].run(runtime, link.prompt, **link.params)
        return cache[key]

    return run


def test_the_simulated_cpu_moves_the_logits_as_far_as_the_bound_allows(runtime):
    """The check below means something only if the simulated rounding is at least as large as LOGIT_NOISE
    (and not so large that it changes what the model says)."""
    prompt = "The capital of France is"
    clean = runtime.trace(prompt).logits[-1]
    for sign in (1, -1):
        with worse_rounding(runtime, sign):
            moved = float((runtime.trace(prompt).logits[-1] - clean).abs().max())
        assert numerics.LOGIT_NOISE <= moved <= 10 * numerics.LOGIT_NOISE
    assert torch.equal(runtime.trace(prompt).logits[-1], clean), "the perturbation is gone afterwards"


@pytest.mark.slow  # every demo twice more; it does not depend on the CPU, so `make test-cpu-paths` leaves it out
@pytest.mark.parametrize("claim_id", sorted(set(EVIDENCE_NUMBERS) - COMPARED_WITH_THE_LOAD))
def test_quoted_numbers_hold_on_a_cpu_with_far_worse_rounding(claim_id: str, results_on_a_worse_cpu):
    for sign in (1, -1):
        result = results_on_a_worse_cpu(claim_id, sign)
        for text, rebuild in EVIDENCE_NUMBERS[claim_id]:
            assert rebuild(result) == text, (
                f"{claim_id}: with rounding {'up' if sign > 0 else 'down'} the demo gives {rebuild(result)!r}, "
                f"the evidence says {text!r}: the figure is too close to a rounding point or a threshold")


@pytest.mark.parametrize("claim_id", WITH_DEMO)
def test_every_number_in_the_evidence_is_checked(claim_id: str):
    quoted = numbers_in(inputs_removed(claim_id))
    checked = set().union(*(numbers_in(text) for text, _ in EVIDENCE_NUMBERS.get(claim_id, [])))
    assert quoted - checked == set(), f"{claim_id}: numbers in the evidence that no check covers"


@pytest.mark.parametrize("claim_id", WITH_DEMO)
def test_evidence_names_its_demo_by_title(claim_id: str):
    claim = BANK.claims[claim_id]
    title = DEMOS[claim.demo.id].title
    assert f"“{title}”" in claim.refutation.evidence, f"{claim_id} should name “{title}”"


@pytest.mark.parametrize("claim_id", WITH_DEMO)
def test_evidence_length(claim_id: str):
    words = len(BANK.claims[claim_id].refutation.evidence.split())
    assert 40 <= words <= 90, f"{claim_id}: {words} words"
