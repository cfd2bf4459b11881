"""Live demonstrations: each one computes, from the real model, a fact that refutes a claim.

Every demo module has a pure `compute(...)` returning a small dataclass of numbers
and a separate `chart(...)` that renders it; the UI and CLI only call these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoInfo:
    id: str
    title: str
    summary: str
    default_prompt: str


ATTENTION_BY_HAND = DemoInfo(
    id="attention-by-hand",
    title="Attention by hand",
    summary=(
        "Recompute one head's attention weights as softmax(QKᵀ/√d + causal mask) from the "
        "model's own queries and keys, and compare them with the weights the model used."
    ),
    default_prompt="The cat sat on the mat because it was tired.",
)

DEMOS: dict[str, DemoInfo] = {demo.id: demo for demo in (ATTENTION_BY_HAND,)}
