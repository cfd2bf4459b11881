"""Rounds: which items a learner gets, in which order. The same spec and seed give the same round."""

from __future__ import annotations

import random
from collections.abc import Iterable

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kqv_demo.claim_source import Origin
from kqv_demo.content.loader import Bank
from kqv_demo.content.schema import Topic, Verdict
from kqv_demo.quiz.items import ITEM_KINDS, Item, ItemKind, items_for_claim

# The most items one round may hold. Rounds are stored per learner and a round link may ask for any count,
# so the count stays bounded; but "Everything" must really be everything, so the cap sits well above the
# bank's size (about 380 items with predictions; tests/quiz/test_engine.py fails when the bank outgrows it).
MAX_ROUND_ITEMS = 1000


class RoundSpec(BaseModel):
    """What a round draws from. Empty filters mean "any"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=60)
    title: str
    description: str = ""
    topics: tuple[Topic, ...] = ()
    verdicts: tuple[Verdict, ...] = ()
    kinds: tuple[ItemKind, ...] = ("verdict", "multiple_choice", "numeric", "spot_the_error")
    claims: tuple[str, ...] = ()
    origins: tuple[Origin, ...] = ()  # where the claims come from: the source dialogue, public posts, or both
    core_only: bool = False
    count: int = Field(default=10, ge=1, le=MAX_ROUND_ITEMS)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    order: Literal["shuffled", "bank"] = "shuffled"  # bank: claims in bank order, kinds in the listed order
    time_limit_minutes: int | None = Field(default=None, ge=1, le=180)  # counted from when a learner starts
    feedback: Literal["immediate", "end"] = "immediate"  # end: nothing after each answer, all in the summary
    item_ids: tuple[str, ...] = ()  # a fixed list of items (a class round): overrides every filter above


BUILT_IN: dict[str, RoundSpec] = {
    spec.id: spec
    for spec in (
        RoundSpec(id="core-10", title="Core 10", count=10, core_only=True,
                  description="Ten questions on the misconceptions that matter most."),
        RoundSpec(id="kl-and-dot-products", title="KL and dot products", count=8,
                  topics=("kl-divergence", "dot-product", "softmax"),
                  description="How queries and keys are really compared, and what KL divergence is for."),
        RoundSpec(id="depth-and-layers", title="Depth and layers", count=8,
                  topics=("fixed-depth", "layer-iteration", "early-exit", "residual-stream", "scaling"),
                  description="Fixed depth, what a layer does once, and what early exit really is."),
        RoundSpec(id="see-it-happen", title="See it happen", count=8, kinds=("predict",),
                  description="Predict what the real model will do, then watch it run."),
        RoundSpec(id="common-misconceptions", title="Common misconceptions", count=10, origins=("public",),
                  description="Ten questions on what learners often believe about attention and LLMs, "
                              "found in public posts."),
        RoundSpec(id="everything", title="Everything", count=MAX_ROUND_ITEMS, kinds=ITEM_KINDS,
                  description="Every item in the bank, shuffled, predictions included."),
    )
}


def matching_claims(bank: Bank, spec: RoundSpec) -> list[str]:
    return [
        claim.id
        for claim in bank.claims.values()
        if (not spec.claims or claim.id in spec.claims)
        and (not spec.origins or claim.origin in spec.origins)
        and (not spec.core_only or claim.core)
        and (not spec.verdicts or claim.verdict in spec.verdicts)
        and (not spec.topics or set(spec.topics) & set(claim.topics))
    ]


def build_round(bank: Bank, spec: RoundSpec, extra_items: Iterable[Item] = ()) -> list[Item]:
    """The round's items: one item per claim first, then more per claim, up to `spec.count`.

    Claims come in a seeded order (or bank order with `order="bank"`). `extra_items` (e.g.
    predict-then-observe items) join the pool when their claim matches. A spec with `item_ids`
    gives exactly those items, in that order (ids unknown to the bank are left out).
    """
    if spec.item_ids:
        return _fixed_items(bank, spec, extra_items)
    in_bank_order = spec.order == "bank"
    rng = random.Random(spec.seed)
    claim_ids = matching_claims(bank, spec) if in_bank_order else sorted(matching_claims(bank, spec))
    if not in_bank_order:
        rng.shuffle(claim_ids)
    pool: dict[str, list[Item]] = {claim_id: [] for claim_id in claim_ids}
    for claim_id in claim_ids:
        pool[claim_id] = [i for i in items_for_claim(bank.claims[claim_id], spec.seed) if i.kind in spec.kinds]
    for item in extra_items:
        if item.claim_id in pool and item.kind in spec.kinds:
            pool[item.claim_id].append(item)
    for claim_id in claim_ids:
        if in_bank_order:  # popped from the end: reversed listed order
            pool[claim_id].sort(key=lambda item: spec.kinds.index(item.kind), reverse=True)
        else:
            rng.shuffle(pool[claim_id])
    chosen: list[Item] = []
    while len(chosen) < spec.count and any(pool.values()):
        for claim_id in claim_ids:  # round-robin: breadth before depth
            if pool[claim_id] and len(chosen) < spec.count:
                chosen.append(pool[claim_id].pop())
    if in_bank_order:  # each claim's items together, claims in bank order
        position = {claim_id: index for index, claim_id in enumerate(claim_ids)}
        chosen.sort(key=lambda item: (position[item.claim_id], spec.kinds.index(item.kind)))
    return chosen


def _fixed_items(bank: Bank, spec: RoundSpec, extra_items: Iterable[Item]) -> list[Item]:
    available = {item.id: item for claim in bank.claims.values() for item in items_for_claim(claim, spec.seed)}
    available.update({item.id: item for item in extra_items if item.claim_id in bank.claims})
    return [available[item_id] for item_id in spec.item_ids if item_id in available]


def valid_kinds() -> tuple[str, ...]:
    return ITEM_KINDS
