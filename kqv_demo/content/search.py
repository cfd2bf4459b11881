"""Browse the bank: filter claims by words, topics, verdicts and importance."""

from __future__ import annotations

from collections.abc import Iterable

from kqv_demo.content.schema import Claim

VERDICT_LABELS = {"false": "False", "partly": "Partly true", "true": "True"}
VERDICT_ORDER = {"false": 0, "partly": 1, "true": 2}


def searchable_text(claim: Claim) -> str:
    parts = [claim.id, claim.quote or "", *claim.phrasings.all(), claim.misconception or "", *claim.topics,
             *claim.refutation.model_dump().values()]
    return " ".join(part for part in parts if part).lower()


def filter_claims(
    claims: Iterable[Claim],
    text: str = "",
    topics: Iterable[str] = (),
    verdicts: Iterable[str] = (),
    core_only: bool = False,
) -> list[Claim]:
    """Claims that contain every word of `text` and match every chosen filter (empty = any)."""
    words = text.lower().split()
    topics, verdicts = set(topics), set(verdicts)
    return [
        claim
        for claim in claims
        if (not core_only or claim.core)
        and (not verdicts or claim.verdict in verdicts)
        and (not topics or topics & set(claim.topics))
        and all(word in searchable_text(claim) for word in words)
    ]
