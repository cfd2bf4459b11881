"""Live demonstrations: each one computes, from the real model, a fact that refutes a claim.

Every demo module defines `DEMO`, a `base.Demo`: a pure `compute(runtime, prompt, **params)`
returning a small dataclass of numbers, and a separate `chart` and `explain` that render it.
The UI, the CLI and the handouts only call these.

`DEMO_IDS` names them without importing any (the bank's validation, and exports that need no model,
must not pay for torch); `DEMOS` imports them all on first use. To add a demo, add its module below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kqv_demo.demos.base import Demo

# demo id -> module, in the Demo lab's order; each module's DEMO.id is its key (tests/demos/test_registry.py)
_MODULES: dict[str, str] = {
    "attention-by-hand": "attention_by_hand",
    "dot-product-not-kl": "dot_product_not_kl",
    "raw-scores": "raw_scores",
    "soft-lookup": "soft_lookup",
    "keys-are-computed": "keys_are_computed",
    "weights-per-input": "weights_per_input",
    "query-count": "query_count",
    "values-not-text": "values_not_text",
    "heads-in-parallel": "heads_in_parallel",
    "heads-differ": "heads_differ",
    "causal-vs-bidirectional": "causal_vs_bidirectional",
    "fixed-depth": "fixed_depth",
    "one-attention-pass": "one_attention_pass",
    "logit-lens": "logit_lens",
    "attention-sinks": "attention_sinks",
    "confidence-readable": "confidence",
    "context-changes-predictions": "context_effect",
    "no-learning-at-inference": "no_learning",
    "kv-cache-steps": "kv_cache",
    "kv-cache-contents": "kv_cache_contents",
    "no-bias-concepts": "no_bias_concepts",
    "shared-neighbours": "shared_neighbours",
    "depth-table": "depth_table",
}
DEMO_IDS: tuple[str, ...] = tuple(_MODULES)

DEMOS: dict[str, Demo]
ATTENTION_BY_HAND: Demo


def _load_all() -> dict[str, Demo]:
    return {demo_id: importlib.import_module(f"kqv_demo.demos.{module}").DEMO for demo_id, module in _MODULES.items()}


def __getattr__(name: str) -> Any:
    """`DEMOS` and `ATTENTION_BY_HAND` import every demo (and torch) the first time they are asked for."""
    if name in ("DEMOS", "ATTENTION_BY_HAND"):
        demos = _load_all()
        globals().update(DEMOS=demos, ATTENTION_BY_HAND=demos["attention-by-hand"])
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
