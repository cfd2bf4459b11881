"""Spaced review with Leitner boxes.

A claim enters box 1 when it is missed (or answered right but unsure). Each right, confident
answer moves it up one box; a wrong answer sends it back to box 1. A box's number sets how
long until the next review, so well-known claims come back rarely and shaky ones soon
(spacing beats massing: Cepeda et al. 2006).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from kqv_demo.storage import Card  # a stored row; the rule that moves it lives here

INTERVALS = {1: timedelta(days=1), 2: timedelta(days=3), 3: timedelta(days=7), 4: timedelta(days=14),
             5: timedelta(days=30)}
TOP_BOX = max(INTERVALS)


def next_box(box: int | None, correct: bool, confidence: int) -> int:
    """Where a claim goes after an answer. `box` is None for a claim never reviewed before."""
    if not correct:
        return 1
    if box is None:
        return 1 if confidence == 1 else 2
    if confidence == 1:
        return box  # right but unsure: not yet earned a longer wait
    return min(box + 1, TOP_BOX)


def schedule(card: Card | None, claim_id: str, correct: bool, confidence: int, now: datetime) -> Card:
    box = next_box(card.box if card else None, correct, confidence)
    return Card(claim_id, box, now + INTERVALS[box])


def due(cards: list[Card], now: datetime) -> list[Card]:
    """Cards to review now: lowest box (shakiest) first, then the most overdue."""
    return sorted((c for c in cards if c.due <= now), key=lambda c: (c.box, c.due))
