"""The numbers of a class round's dashboard, and its CSV: pure reads of the store, no UI."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from kqv_demo.classroom.classes import class_spec, open_class
from kqv_demo.content.loader import Bank
from kqv_demo.quiz.resolve import round_items
from kqv_demo.quiz.scoring import CONFIDENCE_LABELS, Answer, CalibrationRow, summarise
from kqv_demo.storage import Store, StoredAnswer

CSV_COLUMNS = ("student", "item_id", "claim_id", "kind", "response", "correct", "confidence", "answered_at")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# What the coded columns mean: shown beside the download and in the README (the file stays plain CSV).
CSV_LEGEND = ("correct: 1 right, 0 wrong; confidence: 1 unsure, 2 fairly sure, 3 sure (given before the answer "
              "was shown); answered_at: UTC; empty cells: not answered.")


@dataclass(frozen=True)
class ItemAccuracy:
    item_id: str
    claim_id: str
    kind: str
    prompt: str
    answered: int
    correct: int

    @property
    def correct_share(self) -> float | None:
        return self.correct / self.answered if self.answered else None


@dataclass(frozen=True)
class HeldMisconception:
    """A claim the class got wrong while sure (confidence 3) or fairly sure (confidence 2)."""

    claim_id: str
    claim: str  # the claim restated plainly
    sure: int
    fairly_sure: int


@dataclass(frozen=True)
class StudentResult:
    name: str  # made unique within the class: "Ada", "Ada (2)"
    round_id: int  # what the instructor's "remove" names
    answered: int
    correct: int
    items: int
    cbm_total: int
    cbm_max: int
    calibration: tuple[CalibrationRow, ...]
    finished: bool

    @property
    def calibration_text(self) -> str:
        """Right answers at each confidence, e.g. "Sure 3/4 · Fairly sure 1/2"."""
        return " · ".join(f"{CONFIDENCE_LABELS[row.confidence]} {row.correct}/{row.answered}"
                          for row in reversed(self.calibration) if row.answered) or "–"


@dataclass(frozen=True)
class AnswerRow:
    """One student and one item of the round; the answer fields are None when it was not answered."""

    student: str
    item_id: str
    claim_id: str
    kind: str
    response: str | None
    correct: bool | None
    confidence: int | None
    answered_at: datetime | None


@dataclass(frozen=True)
class ClassResults:
    code: str
    title: str
    max_students: int
    started: datetime | None  # None: the students are waiting for the instructor
    joining_open: bool
    items: tuple[ItemAccuracy, ...]
    students: tuple[StudentResult, ...]
    misconceptions: tuple[HeldMisconception, ...]  # most often held with high confidence first
    rows: tuple[AnswerRow, ...]  # one per student and item

    @property
    def joined(self) -> int:
        return len(self.students)

    @property
    def finished(self) -> int:
        return sum(student.finished for student in self.students)

    @property
    def answers(self) -> int:
        return sum(student.answered for student in self.students)


def class_results(store: Store, bank: Bank, code: str) -> ClassResults:
    """Everything the dashboard shows for class `code` (call after the instructor key was checked)."""
    stored = open_class(store, code)
    items = round_items(bank, class_spec(stored))
    members = store.class_members(stored.id)
    answers_by_round = store.class_answers(stored.id)
    names = _unique_names([member.name for member in members])
    students, rows = [], []
    for member, name in zip(members, names):
        answers = {answer.item_id: answer for answer in answers_by_round.get(member.round.id, [])}
        students.append(_student(name, member.round.id, answers, len(items), member.round.finished is not None))
        rows += [_row(name, item.id, item.claim_id, item.kind, answers.get(item.id)) for item in items]
    all_answers = [answer for answers in answers_by_round.values() for answer in answers]
    return ClassResults(
        code=stored.code, title=stored.title, max_students=stored.max_students, started=stored.started,
        joining_open=stored.joining_open, items=tuple(_accuracy(items, all_answers)),
        students=tuple(students), misconceptions=tuple(_misconceptions(bank, all_answers)), rows=tuple(rows),
    )


def _unique_names(names: list[str]) -> list[str]:
    seen: Counter[str] = Counter()
    unique = []
    for name in names:
        seen[name] += 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def _student(name: str, round_id: int, answers: dict[str, StoredAnswer], items: int,
             finished: bool) -> StudentResult:
    summary = summarise(Answer(a.item_id, a.claim_id, a.correct, a.confidence) for a in answers.values())
    return StudentResult(name, round_id, summary.answered, summary.correct, items, summary.cbm_total, summary.cbm_max,
                         summary.calibration, finished)


def _row(student: str, item_id: str, claim_id: str, kind: str, answer: StoredAnswer | None) -> AnswerRow:
    if answer is None:
        return AnswerRow(student, item_id, claim_id, kind, None, None, None, None)
    return AnswerRow(student, item_id, claim_id, kind, answer.response, answer.correct, answer.confidence,
                     answer.answered)


def _accuracy(items, answers: list[StoredAnswer]) -> list[ItemAccuracy]:
    answered = Counter(answer.item_id for answer in answers)
    correct = Counter(answer.item_id for answer in answers if answer.correct)
    return [ItemAccuracy(item.id, item.claim_id, item.kind, item.prompt, answered[item.id], correct[item.id])
            for item in items]


def _misconceptions(bank: Bank, answers: list[StoredAnswer]) -> list[HeldMisconception]:
    sure = Counter(a.claim_id for a in answers if not a.correct and a.confidence == 3)
    fairly = Counter(a.claim_id for a in answers if not a.correct and a.confidence == 2)
    held = [
        HeldMisconception(claim_id, bank.claims[claim_id].refutation.claim if claim_id in bank.claims else claim_id,
                          sure[claim_id], fairly[claim_id])
        for claim_id in set(sure) | set(fairly)
    ]
    return sorted(held, key=lambda m: (-m.sure, -m.fairly_sure, m.claim_id))


def results_csv(results: ClassResults) -> str:
    """One row per student and item (unanswered items have empty answer cells), safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in results.rows:
        writer.writerow([_cell(value) for value in (
            row.student, row.item_id, row.claim_id, row.kind, row.response,
            "" if row.correct is None else int(row.correct), row.confidence,
            row.answered_at.isoformat(timespec="seconds") + "Z" if row.answered_at else None,
        )])
    return out.getvalue()


def _cell(value: object) -> str:
    """A CSV cell; text a spreadsheet would run as a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
