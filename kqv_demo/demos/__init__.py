"""Live demonstrations: each one computes, from the real model, a fact that refutes a claim.

Every demo module defines `DEMO`, a `base.Demo`: a pure `compute(runtime, prompt, **params)`
returning a small dataclass of numbers, and a separate `chart` and `explain` that render it.
The UI, the CLI and the handouts only call these.
"""

from __future__ import annotations

from kqv_demo.demos import attention_by_hand, dot_product_not_kl, keys_are_computed
from kqv_demo.demos.base import Demo

DEMOS: dict[str, Demo] = {module.DEMO.id: module.DEMO for module in (attention_by_hand, dot_product_not_kl, keys_are_computed)}
ATTENTION_BY_HAND = DEMOS["attention-by-hand"]
