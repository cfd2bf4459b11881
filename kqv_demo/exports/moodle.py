"""Moodle XML: a category, then one question per item (truefalse, multichoice or numerical).

HTML goes in CDATA; math is written as \\( ... \\) for Moodle's MathJax filter.
"""

from __future__ import annotations

from collections.abc import Callable

from kqv_demo.content.loader import Bank
from kqv_demo.exports.handout import INSTRUCTIONS, answer_feedback, shown, summary_feedback
from kqv_demo.exports.live import Live, with_answers
from kqv_demo.exports.text import mathjax_math, to_html
from kqv_demo.markup import visible
from kqv_demo.quiz.items import Item, format_number
from kqv_demo.quiz.rounds import RoundSpec

CATEGORY_ROOT = "$course$/top/KQV Tutor"


def _cdata(markup: str) -> str:
    """HTML in CDATA. Control characters (a title's \\x00, \\x1b...) are dropped: XML 1.0 allows
    none of them, not even in CDATA, and Moodle refuses the whole file."""
    return "<![CDATA[" + visible(markup, keep_line_breaks=True).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _html(text: str) -> str:
    return to_html(text, math=mathjax_math)


def _text(tag: str, markup: str, html: bool = True) -> str:
    fmt = ' format="html"' if html else ""
    return f"<{tag}{fmt}><text>{_cdata(markup)}</text></{tag}>"


def _plain_text_element(value: str) -> str:
    return "<text>" + visible(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "</text>"


def is_true_false(item: Item) -> bool:
    return item.kind == "verdict" and item.answer in ("true", "false")


def question_type(item: Item) -> str:
    if is_true_false(item):
        return "truefalse"
    return "numerical" if item.kind == "numeric" else "multichoice"


def question_html(item: Item, math: Callable[[str], str] = mathjax_math) -> str:
    """The question as HTML: its instruction, the prompt (quoted for statements) and the unit asked for."""
    instruction = "True or false?" if is_true_false(item) else INSTRUCTIONS[item.kind]
    body = to_html(item.prompt, math=math)
    if item.kind in ("verdict", "spot_the_error"):
        body = f"<blockquote>{body}</blockquote>"
    if item.lead:
        body = f"<p>{to_html(item.lead, math=math, inline=True)}</p>{body}"
    if item.kind == "numeric" and item.unit:
        body += f"<p>Give the answer in {to_html(item.unit, inline=True)}.</p>"
    return f"<p><strong>{instruction}</strong></p>{body}"


def _answer(fraction: int, text: str, feedback: str, extra: str = "", html: bool = True) -> str:
    fmt = ' format="html"' if html else ' format="moodle_auto_format"'
    answer_text = f"<text>{_cdata(text)}</text>" if html else _plain_text_element(text)
    return (f'<answer fraction="{fraction}"{fmt}>{answer_text}{extra}'
            f"{_text('feedback', _html(feedback))}</answer>")


def _answers(item: Item) -> str:
    if is_true_false(item):
        return "".join(_answer(100 if value == item.answer else 0, value, answer_feedback(item, value), html=False)
                       for value in ("true", "false"))
    if item.kind == "numeric":
        right = f"Right. {item.explanation}"
        wrong = f"Not quite: the answer is {shown(item, item.answer)}. {item.explanation}"
        return (_answer(100, format_number(float(item.answer)), right,
                        f"<tolerance>{format_number(item.tolerance)}</tolerance>", html=False)
                + _answer(0, "*", wrong, "<tolerance>0</tolerance>", html=False)
                + "<unitgradingtype>0</unitgradingtype><unitpenalty>0</unitpenalty>"
                  "<showunits>3</showunits><unitsleft>0</unitsleft>")
    choices = "".join(_answer(100 if choice == item.answer else 0,
                              to_html(shown(item, choice), mathjax_math, inline=True),
                              answer_feedback(item, choice)) for choice in item.choices)
    return ("<single>true</single><shuffleanswers>1</shuffleanswers><answernumbering>abc</answernumbering>"
            + _text("correctfeedback", "") + _text("partiallycorrectfeedback", "") + _text("incorrectfeedback", "")
            + choices)


def question_xml(bank: Bank, item: Item) -> str:
    general = summary_feedback(bank.claims.get(item.claim_id))
    return (f'<question type="{question_type(item)}">'
            f"<name>{_plain_text_element(item.id)}</name>"
            f"{_text('questiontext', question_html(item))}"
            f"{_text('generalfeedback', _html(general))}"
            "<defaultgrade>1</defaultgrade><penalty>1</penalty><hidden>0</hidden>"
            f"<idnumber>{item.id}</idnumber>{_answers(item)}</question>")


def category_path(spec: RoundSpec) -> str:
    return f"{CATEGORY_ROOT}/{spec.title.replace('/', '//')}"


def moodle_xml(bank: Bank, spec: RoundSpec, items: list[Item], live: Live | None = None) -> str:
    """The round as a Moodle XML question file. Prediction items need `live` (their answers come from the model)."""
    items = with_answers(items, live)
    category = (f'<question type="category"><category>{_plain_text_element(category_path(spec))}</category>'
                f"{_text('info', _html(spec.description))}</question>")
    questions = "\n".join(question_xml(bank, item) for item in items)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<quiz>\n{category}\n{questions}\n</quiz>\n'
