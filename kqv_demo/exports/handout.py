"""The handout's content, shared by the HTML and PDF renderings: questions first, then the key.

Texts stay raw bank text (Markdown with $LaTeX$) here; each renderer converts them for its medium.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from kqv_demo.content.loader import Bank
from kqv_demo.content.schema import Claim
from kqv_demo.content.search import VERDICT_LABELS
from kqv_demo.exports.live import Figure, Live, with_answers
from kqv_demo.exports.text import readable_subscripts
from kqv_demo.quiz.items import Item, format_number
from kqv_demo.quiz.rounds import RoundSpec

INSTRUCTIONS = {
    "verdict": "True, partly true, or false? Say why.",
    "multiple_choice": "Choose the best answer.",
    "numeric": "Compute the answer.",
    "spot_the_error": "Which phrase is wrong? Say what is true instead.",
    "predict": "Predict what the real model does.",
}


@dataclass(frozen=True)
class Question:
    number: int
    item: Item
    instruction: str
    choices: tuple[str, ...]  # as printed (verdicts spelled out); empty for numeric


@dataclass(frozen=True)
class KeyEntry:
    number: int
    item: Item
    answer: str  # as printed
    feedback: str  # bank text: why this is the answer
    # The live run that shows the answer (a claim's demo, or the run that decided a prediction). In the key,
    # not with the question: a demo is chosen to show the answer, and its title or numbers would give it away.
    figure: Figure | None
    figure_shown_before: bool  # printed with an earlier key entry: refer to it instead of repeating it


@dataclass(frozen=True)
class Handout:
    title: str
    description: str
    note: str
    questions: list[Question]
    key: list[KeyEntry]
    claims: list[Claim]  # the claims behind the questions, in order of first appearance


def shown(item: Item, value: str) -> str:
    """A choice or answer as the learner reads it."""
    if item.kind == "verdict":
        return VERDICT_LABELS.get(value, value)
    if item.kind == "numeric":
        return f"{format_number(float(value))} {item.unit}".strip()
    return readable_subscripts(value)


def _feedback(item: Item) -> str:
    parts = [item.feedback.get(item.answer, ""), item.explanation]
    return "\n\n".join(part for part in parts if part)


def answer_feedback(item: Item, choice: str) -> str:
    """Bank text shown after picking `choice`: its own feedback, else the item's explanation."""
    own = item.feedback.get(choice)
    if own:
        return own
    if choice == item.answer:
        return f"Right. {item.explanation}".strip()
    return f"Not quite: the answer is “{shown(item, item.answer)}”. {item.explanation}".strip()


def summary_feedback(claim: Claim | None) -> str:
    """General feedback for LMS questions: the claim, its verdict and the references (bank Markdown)."""
    if claim is None:
        return ""
    references = "\n".join(f"- {reference.cite()}" for reference in claim.references)
    return (f"**{VERDICT_LABELS[claim.verdict]}:** {claim.refutation.claim}\n\n{claim.refutation.verdict}\n\n"
            f"**References**\n\n{references}")


def header_note(items: list[Item], made_on: date) -> str:
    """What a reader should know: when the figures were computed and where prediction answers come from."""
    predictions = sum(item.kind == "predict" for item in items)
    note = (f"The figures were computed by the real models (SmolLM2-135M, all-MiniLM-L6-v2) when this "
            f"handout was made, on {made_on.isoformat()}. They are in the answer key, beside the answers they "
            "show: with the questions they would give the answers away.")
    if predictions:
        note += f" The answers to the {predictions} prediction question(s) are what the model did in that run."
    return note


def build_handout(bank: Bank, spec: RoundSpec, items: list[Item], live: Live, made_on: date | None = None) -> Handout:
    """Prediction items get the answer the model gave in `live`'s run."""
    items = with_answers(items, live)
    questions, key, seen_figures, claims = [], [], set(), {}
    for number, item in enumerate(items, start=1):
        questions.append(Question(
            number, item, INSTRUCTIONS[item.kind], tuple(shown(item, choice) for choice in item.choices)))
        figure = live.figure_for(item)
        key.append(KeyEntry(number, item, shown(item, item.answer), _feedback(item), figure,
                            figure is not None and figure.number in seen_figures))
        if figure is not None:
            seen_figures.add(figure.number)
        if item.claim_id in bank.claims:
            claims.setdefault(item.claim_id, bank.claims[item.claim_id])
    return Handout(spec.title, spec.description, header_note(items, made_on or date.today()), questions, key,
                   list(claims.values()))
