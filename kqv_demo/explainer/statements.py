"""The vetted statements the chat can take a stance on, and every phrasing that leads to each.

A false or partly claim gives two statements: its misconception (the wrong part only) and its
correction (the first of its `corrections`, the truth in the misconception's own words). A true claim
and each of a topic page's truths give one true statement. The chat refutes only a message that asserts
a misconception, agrees only with one that asserts a truth, and explains everything else.

    statements = vetted_statements(bank)
    statements[0].kind, statements[0].text     # "misconception", "Attention compares ... with KL divergence."
    statements[0].phrasings["states"]          # how learners assert it
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kqv_demo.content.loader import Bank
from kqv_demo.content.schema import Claim

StatementKind = Literal["misconception", "truth"]
PhrasingKind = Literal["states", "presupposes", "asks", "denies"]
PHRASING_KINDS: tuple[PhrasingKind, ...] = ("states", "presupposes", "asks", "denies")


@dataclass(frozen=True)
class Statement:
    id: str  # "misconception:<claim>", "correction:<claim>", "claim:<claim>" or "truth:<topic>:<n>"
    kind: StatementKind
    text: str
    topics: tuple[str, ...]
    claim_id: str | None = None  # the claim it belongs to (a topic truth has none)
    topic_id: str | None = None  # the topic page it belongs to (claims: their first topic)
    # What learners write about it, by what the message does: asserts it (states), takes it for granted
    # (presupposes), asks about its subject (asks) or asserts its opposite (denies).
    phrasings: dict[PhrasingKind, tuple[str, ...]] = field(default_factory=dict)
    opposite: str | None = None  # the id of the statement it contradicts (misconception <-> correction)

    def lines(self, kind: PhrasingKind) -> tuple[str, ...]:
        return self.phrasings.get(kind, ())


def vetted_statements(bank: Bank) -> list[Statement]:
    """Every statement of the bank, claims first (in bank order), then the topic pages' truths."""
    statements: list[Statement] = []
    for claim in bank.claims.values():
        statements += _of_claim(claim)
    for topic in bank.topics.values():
        for number, truth in enumerate(topic.truths):
            statements.append(Statement(
                f"truth:{topic.id}:{number}", "truth", truth.statement, (topic.id,), None, topic.id,
                {"states": tuple(truth.states), "asks": tuple(truth.asks)},
            ))
    return statements


def _of_claim(claim: Claim) -> list[Statement]:
    said = claim.phrasings
    topics = tuple(claim.topics)
    if claim.verdict == "true":
        return [Statement(
            f"claim:{claim.id}", "truth", _one_line(claim.refutation.claim), topics, claim.id, topics[0],
            {"states": tuple(said.states), "presupposes": tuple(said.presupposes), "asks": tuple(said.asks)},
        )]
    wrong, right = f"misconception:{claim.id}", f"correction:{claim.id}"
    correction, *other_corrections = said.corrections
    return [
        Statement(wrong, "misconception", _one_line(claim.statement), topics, claim.id, topics[0], {
            "states": tuple(said.states), "presupposes": tuple(said.presupposes), "asks": tuple(said.asks),
            "denies": tuple(said.corrections),
        }, opposite=right),
        Statement(right, "truth", _one_line(correction), topics, claim.id, topics[0], {
            "states": tuple(other_corrections), "asks": tuple(said.asks),
            "denies": (*said.states, *said.presupposes),
        }, opposite=wrong),
    ]


def _one_line(text: str) -> str:
    return " ".join(text.split())
