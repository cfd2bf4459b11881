"""Moodle GIFT: one question a paragraph, `::title::[html]text{answers}`, blank lines between.

Texts are HTML with math as Unicode (LaTeX would need every brace escaped), then GIFT-escaped:
`~ = # { } :` and the backslash itself get a backslash.
"""

from __future__ import annotations

import re
from datetime import date

from kqv_demo.content.loader import Bank
from kqv_demo.exports.handout import answer_feedback, shown, summary_feedback
from kqv_demo.exports.live import Live, with_answers
from kqv_demo.exports.moodle import CATEGORY_ROOT, is_true_false, question_html
from kqv_demo.exports.text import plain_math, to_html
from kqv_demo.markup import visible
from kqv_demo.quiz.items import Item, format_number
from kqv_demo.quiz.rounds import RoundSpec

SPECIAL = "~=#{}:"


def escape(text: str) -> str:
    """Escape GIFT's special characters and fold the text onto one line (a blank line ends a question);
    control and invisible characters are dropped."""
    text = " ".join(visible(text).split())
    return re.sub(r"([\\~=#{}:])", r"\\\1", text)


def _html(text: str, inline: bool = False) -> str:
    return escape(to_html(text, inline=inline))


def _answers(item: Item, general: str) -> str:
    tail = f"####{general}" if general else ""
    if is_true_false(item):
        wrong = "false" if item.answer == "true" else "true"
        return (f"{{{item.answer.upper()}#{_html(answer_feedback(item, wrong), True)}"
                f"#{_html(answer_feedback(item, item.answer), True)}{tail}}}")
    if item.kind == "numeric":
        feedback = _html(f"{shown(item, item.answer)}. {item.explanation}", True)
        return f"{{#{format_number(float(item.answer))}:{format_number(item.tolerance)}#{feedback}{tail}}}"
    options = " ".join(
        f"{'=' if choice == item.answer else '~'}{_html(shown(item, choice), True)}"
        f"#{_html(answer_feedback(item, choice), True)}"
        for choice in item.choices
    )
    return f"{{{options} {tail}}}"


def question_gift(bank: Bank, item: Item) -> str:
    general = _html(summary_feedback(bank.claims.get(item.claim_id)))
    return f"::{escape(item.id)}::[html]{escape(question_html(item, plain_math))}{_answers(item, general)}"


def gift(bank: Bank, spec: RoundSpec, items: list[Item], live: Live | None = None, made_on: date | None = None) -> str:
    """The round as a GIFT file. Prediction items need `live` (their answers come from the model)."""
    items = with_answers(items, live)
    # Words and plain punctuation only: GIFT has no escape inside $CATEGORY, whose "/" would also start a
    # subcategory. A colon is kept ("Workshop: attention"): Moodle reads the whole rest of the line.
    category = " ".join(re.sub(r"[^\w .,:()'-]", " ", visible(spec.title)).split()) or spec.id
    header = [
        f"// KQV Tutor: {category} ({len(items)} questions), exported {(made_on or date.today()).isoformat()}.",
        f"$CATEGORY: {CATEGORY_ROOT}/{category}",
    ]
    return "\n".join(header) + "\n\n" + "\n\n".join(question_gift(bank, item) for item in items) + "\n"
