"""Live demonstrations: each one computes, from the real model, a fact that refutes a claim.

Every demo module defines `DEMO`, a `base.Demo`: a pure `compute(runtime, prompt, **params)`
returning a small dataclass of numbers, and a separate `chart` and `explain` that render it.
The UI, the CLI and the handouts only call these. The order below is the Demo lab's order.
"""

from __future__ import annotations

from kqv_demo.demos import (
    attention_by_hand,
    attention_sinks,
    causal_vs_bidirectional,
    confidence,
    context_effect,
    depth_table,
    dot_product_not_kl,
    fixed_depth,
    heads_differ,
    heads_in_parallel,
    keys_are_computed,
    kv_cache,
    kv_cache_contents,
    logit_lens,
    no_bias_concepts,
    no_learning,
    one_attention_pass,
    query_count,
    raw_scores,
    shared_neighbours,
    soft_lookup,
    values_not_text,
    weights_per_input,
)
from kqv_demo.demos.base import Demo

_IN_ORDER = (
    attention_by_hand, dot_product_not_kl, raw_scores, soft_lookup, keys_are_computed, weights_per_input,
    query_count, values_not_text, heads_in_parallel, heads_differ, causal_vs_bidirectional, fixed_depth,
    one_attention_pass, logit_lens, attention_sinks, confidence, context_effect, no_learning, kv_cache,
    kv_cache_contents, no_bias_concepts, shared_neighbours, depth_table,
)
DEMOS: dict[str, Demo] = {module.DEMO.id: module.DEMO for module in _IN_ORDER}
ATTENTION_BY_HAND = DEMOS["attention-by-hand"]
