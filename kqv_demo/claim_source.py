"""Where a claim comes from, as every view shows it: its quote from the source dialogue, or the public
posts where learners state it (`seen_at`). A public claim has no quote, speaker or line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from kqv_demo.content.schema import Claim

Origin = Literal["dialogue", "public"]
ORIGINS: tuple[Origin, ...] = ("dialogue", "public")
ORIGIN_LABELS: dict[str, str] = {"dialogue": "From the dialogue", "public": "Common misconceptions (public)"}
SAID_IN_THE_DIALOGUE = "Said in the dialogue"
WHERE_LEARNERS_SAY_IT = "Where learners say it"


def headline(claim: Claim) -> str:
    """The words a claim is listed by (bank Markdown): the dialogue's quote; for a public claim, the
    misconception as a learner would say it (a true claim: the claim restated)."""
    if claim.origin == "dialogue" and claim.quote:
        return claim.quote
    return claim.misconception or claim.refutation.claim


def addresses(claim: Claim) -> list[str]:
    """The addresses where learners state a public claim, exactly as stored (empty for dialogue claims)."""
    return [str(url) for url in claim.seen_at]


def from_origin(claims: Iterable[Claim], origin: str | None) -> list[Claim]:
    """The claims of one origin ("dialogue" or "public"); None or "all" keeps every claim."""
    return [claim for claim in claims if origin in (None, "all") or claim.origin == origin]
