"""Quiz items generated from the claim bank, and how an answer to each is checked."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from kqv_demo.content.schema import Claim
from kqv_demo.markup import literal

ItemKind = Literal["verdict", "multiple_choice", "numeric", "spot_the_error", "predict"]
ITEM_KINDS: tuple[ItemKind, ...] = ("verdict", "multiple_choice", "numeric", "spot_the_error", "predict")
KIND_LABELS: dict[str, str] = {"verdict": "True / partly / false", "multiple_choice": "Multiple choice",
                               "numeric": "Numeric", "spot_the_error": "Spot the error",
                               "predict": "Predict, then watch the model"}
VERDICT_CHOICES = ("true", "partly", "false")
T = TypeVar("T")


@dataclass(frozen=True)
class Item:
    """One question. `choices` are what the learner picks from (empty for numeric answers)."""

    id: str  # "<claim id>:<kind>" — stable across releases, used for storage and exports
    claim_id: str
    kind: ItemKind
    prompt: str
    choices: tuple[str, ...] = ()
    answer: str = ""  # the right choice, or the number as text for numeric items
    tolerance: float = 0.0
    unit: str = ""
    feedback: dict[str, str] = field(default_factory=dict)  # choice -> feedback shown after picking it
    explanation: str = ""  # shown after any answer
    lead: str = ""  # shown before the prompt: who wrote a spot-the-error text, and about what


@dataclass(frozen=True)
class Checked:
    correct: bool
    feedback: str


def shuffled(options: Sequence[T], seed: str) -> list[T]:
    """`options` in an order fixed by `seed`: the same seed always gives the same order."""
    order = list(options)
    random.Random(seed).shuffle(order)
    return order


def items_for_claim(claim: Claim, seed: int = 0) -> list[Item]:
    """Every item the bank offers for one claim (option order shuffled reproducibly by seed)."""
    quiz, items = claim.quiz, []
    items.append(Item(
        id=f"{claim.id}:verdict", claim_id=claim.id, kind="verdict",
        prompt=quiz.verdict.statement, choices=VERDICT_CHOICES, answer=claim.verdict,
        explanation=quiz.verdict.explanation,
    ))
    mc = quiz.multiple_choice
    options = shuffled(mc.options, f"{claim.id}:{seed}")
    items.append(Item(
        id=f"{claim.id}:multiple_choice", claim_id=claim.id, kind="multiple_choice", prompt=mc.question,
        choices=tuple(option.text for option in options),
        answer=next(option.text for option in options if option.correct),
        feedback={option.text: option.feedback for option in options},
    ))
    if quiz.numeric is not None:
        numeric = quiz.numeric
        items.append(Item(
            id=f"{claim.id}:numeric", claim_id=claim.id, kind="numeric", prompt=numeric.question,
            answer=repr(numeric.answer), tolerance=numeric.tolerance, unit=numeric.unit,
            explanation=numeric.feedback,
        ))
    if quiz.spot_the_error is not None:
        spot = quiz.spot_the_error
        items.append(Item(
            id=f"{claim.id}:spot_the_error", claim_id=claim.id, kind="spot_the_error",
            prompt=spot.text, choices=tuple(spot.spans), answer=spot.spans[spot.wrong],
            explanation=spot.feedback, lead=spot.context or _said_by(claim),
        ))
    return items


def _said_by(claim: Claim) -> str:
    """Where a spot-the-error text comes from, when the claim does not say: a quote from the source
    dialogue, or a claim as learners often state it (written for the bank, not a quote)."""
    if claim.origin == "dialogue" and claim.speaker:
        return f"The {claim.speaker.lower()} in the source dialogue wrote:"
    return "A claim as learners often state it:"


def format_number(value: float) -> str:
    """A number in full, without exponent or trailing zeros: 3540096, 0.0946, -0.5."""
    return f"{value:.12g}" if abs(value) < 1e12 else repr(value)


def parse_number(text: str) -> float | None:
    """A learner's number: accepts '0.0946', '0,0946' (a decimal comma), ' 9.46e-2 ', '3,540,096' and
    '3 540 096.5' (thousands separated); None when it is not a number."""
    cleaned = text.strip().replace(" ", "").replace("\u202f", "").replace("\u00a0", "")
    if "." in cleaned or cleaned.count(",") > 1:
        cleaned = cleaned.replace(",", "")  # commas beside a point, or several: thousands separators
    else:
        cleaned = cleaned.replace(",", ".")  # one comma and no point: a decimal comma
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def numeric_rule(item: Item) -> str:
    """What a numeric item accepts, said before the learner answers (page and handouts)."""
    unit = f" {item.unit}" if item.unit else ""
    return (f"Answers within ±{format_number(item.tolerance)}{unit} of the exact value count as right. "
            "Type a number such as 0.25 (a decimal comma, 0,25, is read as 0.25).")


def not_a_number(response: str) -> str:
    """The message (plain text) for an answer that is not a number: refused before it is scored or stored."""
    return (f"{response.strip()[:40]!r} is not a number, so it was not checked or saved. "
            "Type digits, such as 0.25 or 3540096.")


def check(item: Item, response: str) -> Checked:
    """Is `response` right? With the feedback for exactly this response."""
    if item.kind == "numeric":
        value = parse_number(response)
        if value is None:
            return Checked(False, f"{literal(repr(response.strip()))} is not a number. " + item.explanation)
        target = float(item.answer)
        correct = abs(value - target) <= item.tolerance
        verdict = ("Right" if correct
                   else f"Not quite: the answer is {format_number(target)}{(' ' + item.unit) if item.unit else ''}")
        read_as = "" if response.strip() == format_number(value) else \
            f"Your answer {literal(repr(response.strip()))} was read as {format_number(value)}. "
        return Checked(correct, f"{read_as}{verdict} (accepted within ±{format_number(item.tolerance)}). "
                                f"{item.explanation}")
    if response not in item.choices:
        raise ValueError(f"{response!r} is not one of the choices of {item.id}")
    correct = response == item.answer
    return Checked(correct, item.feedback.get(response) or item.explanation)
