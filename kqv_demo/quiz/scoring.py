"""Certainty-based marking (Gardner-Medwin) and calibration.

The learner says how sure they are (1 = unsure, 2 = fairly sure, 3 = sure) before the answer
is revealed. Right answers earn 1/2/3 marks, wrong ones cost 0/2/6: saying "sure" only pays
when you are right more than 80% of the time, so honest confidence is the best strategy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

CONFIDENCE_LABELS = {1: "Unsure", 2: "Fairly sure", 3: "Sure"}
CBM_MARKS = {1: (1, 0), 2: (2, -2), 3: (3, -6)}  # confidence -> (mark if right, mark if wrong)


def _break_even(lower: int, higher: int) -> float:
    """The share right above which confidence `higher` earns more on average than `lower`."""
    (right_low, wrong_low), (right_high, wrong_high) = CBM_MARKS[lower], CBM_MARKS[higher]
    return (wrong_low - wrong_high) / ((right_high - wrong_high) - (right_low - wrong_low))


# The share right at which each confidence earns most on average: unsure below 2/3, fairly sure up to 4/5,
# sure above (Gardner-Medwin's thresholds, from CBM_MARKS).
BEST_RANGE = {1: (0.0, _break_even(1, 2)), 2: (_break_even(1, 2), _break_even(2, 3)), 3: (_break_even(2, 3), 1.0)}


def cbm_mark(correct: bool, confidence: int) -> int:
    if confidence not in CBM_MARKS:
        raise ValueError(f"confidence must be 1, 2 or 3, not {confidence!r}")
    right, wrong = CBM_MARKS[confidence]
    return right if correct else wrong


@dataclass(frozen=True)
class Answer:
    item_id: str
    claim_id: str
    correct: bool
    confidence: int


@dataclass(frozen=True)
class CalibrationRow:
    confidence: int
    answered: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.answered if self.answered else None


@dataclass(frozen=True)
class Summary:
    answered: int
    correct: int
    cbm_total: int
    cbm_max: int  # what all-right-and-sure would have earned
    calibration: tuple[CalibrationRow, ...]
    confident_errors: tuple[str, ...]  # claim ids answered wrongly at confidence 3 (then 2): review these first

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.answered if self.answered else None


def calibration_advice(summary: Summary) -> str:
    """Plain words on whether the learner was over- or under-confident, level by level, against the share
    right at which each confidence pays off under certainty-based marking."""
    if not summary.answered:
        return ""
    over, under = [], []
    for row in summary.calibration:
        if not row.answered:
            continue
        low, high = BEST_RANGE[row.confidence]
        said = (f"when you said “{CONFIDENCE_LABELS[row.confidence]}” you were right "
                f"{row.correct} of {row.answered} times")
        if row.accuracy < low:
            over.append(f"{said}; “{CONFIDENCE_LABELS[row.confidence]}” pays off only above {low:.0%}")
        elif row.accuracy > high:
            better = CONFIDENCE_LABELS[row.confidence + 1]
            under.append(f"{said}; above {high:.0%}, “{better}” would have earned more")
    parts = []
    if over:
        parts.append("You were over-confident: " + "; and ".join(over) + ".")
    if under:
        parts.append("You were under-confident: " + "; and ".join(under) + ".")
    if not parts:
        parts.append("Your confidence matched how often you were right: each level paid off.")
    if summary.answered < 10:
        parts.append(f"With {summary.answered} answers this is a rough guide.")
    return " ".join(parts)


def summarise(answers: Iterable[Answer]) -> Summary:
    answers = list(answers)
    calibration = tuple(
        CalibrationRow(level, sum(a.confidence == level for a in answers),
                       sum(a.confidence == level and a.correct for a in answers))
        for level in CONFIDENCE_LABELS
    )
    wrong = sorted((a for a in answers if not a.correct and a.confidence >= 2), key=lambda a: -a.confidence)
    confident_errors = tuple(dict.fromkeys(a.claim_id for a in wrong))
    return Summary(
        answered=len(answers),
        correct=sum(a.correct for a in answers),
        cbm_total=sum(cbm_mark(a.correct, a.confidence) for a in answers),
        cbm_max=3 * len(answers),
        calibration=calibration,
        confident_errors=confident_errors,
    )
