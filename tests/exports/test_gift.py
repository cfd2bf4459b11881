"""GIFT parses back under a strict parser: escapes, answer counts, feedback, general feedback."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from kqv_demo.exports.gift import gift
from kqv_demo.exports.live import with_answers

SPECIAL = set("~=#{}:")


class GiftError(ValueError):
    pass


@dataclass
class Question:
    title: str
    text: str
    kind: str = ""
    answers: list[tuple[bool, str, str]] = field(default_factory=list)  # (right, text, feedback)
    number: tuple[float, float] | None = None
    general: str = ""


def _tokens(source: str) -> list[str]:
    """Text runs and single unescaped special characters; a backslash may only escape a special or itself."""
    tokens, run, at = [], [], 0
    while at < len(source):
        char = source[at]
        if char == "\\":
            if at + 1 >= len(source) or source[at + 1] not in SPECIAL | {"\\"}:
                raise GiftError(f"stray backslash at {at}: {source[at:at + 20]!r}")
            run.append(source[at + 1])
            at += 2
            continue
        if char in SPECIAL:
            if run:
                tokens.append("".join(run))
                run = []
            tokens.append(char)
        else:
            run.append(char)
        at += 1
    if run:
        tokens.append("".join(run))
    return tokens


def _split_general(tokens: list[str]) -> tuple[list[str], str]:
    for index in range(len(tokens) - 3):
        if tokens[index:index + 4] == ["#"] * 4:
            general = tokens[index + 4:]
            if any(token in SPECIAL for token in general):
                raise GiftError(f"unescaped special in general feedback: {general}")
            return tokens[:index], "".join(general).strip()
    return tokens, ""


def parse_question(block: str) -> Question:
    tokens = _tokens(block)
    if tokens[:2] != [":", ":"]:
        raise GiftError("a question must start with ::title::")
    end = tokens.index(":", 2)
    if tokens[end:end + 2] != [":", ":"] or end != 3:
        raise GiftError(f"bad title in {block[:60]!r}")
    question = Question(title=tokens[2], text="")
    rest = tokens[5:]
    if "{" not in rest or rest[-1] != "}":
        raise GiftError("a question needs one {...} answer block at its end")
    opening = rest.index("{")
    text = rest[:opening]
    if any(token in SPECIAL for token in text):
        raise GiftError(f"unescaped special character in question text of {question.title}: {text}")
    question.text = "".join(text)
    body, question.general = _split_general(rest[opening + 1:-1])
    if "{" in body or "}" in body:
        raise GiftError("nested or unescaped brace in answers")
    _parse_answers(question, body)
    return question


def _feedback_pairs(tokens: list[str]) -> list[str]:
    """`text#feedback` -> [text, feedback]; any other special is an error."""
    parts, current = [], []
    for token in tokens:
        if token == "#":
            parts.append("".join(current).strip())
            current = []
        elif token in SPECIAL:
            raise GiftError(f"unescaped {token!r} inside an answer")
        else:
            current.append(token)
    parts.append("".join(current).strip())
    return parts


def _parse_answers(question: Question, body: list[str]) -> None:
    first = body[0].strip() if body else ""
    if first in ("TRUE", "FALSE", "T", "F"):
        question.kind = "truefalse"
        parts = _feedback_pairs(body)
        if len(parts) != 3 or parts[0] != first:
            raise GiftError(f"true/false needs {first}#wrong#right, got {parts}")
        right = first.startswith("T")
        question.answers = [(right, "true", parts[2] if right else parts[1]),
                            (not right, "false", parts[1] if right else parts[2])]
        return
    if body and body[0] == "#":
        question.kind = "numerical"
        value, colon, tolerance, *after = body[1:]
        if colon != ":":
            raise GiftError("numerical answers are #value:tolerance")
        question.number = (float(value), float(tolerance))
        feedback = _feedback_pairs(after)
        question.answers = [(True, value, feedback[1] if len(feedback) > 1 else "")]
        return
    question.kind = "multichoice"
    marks = [index for index, token in enumerate(body) if token in ("=", "~")]
    if not marks or "".join(body[:marks[0]]).strip():
        raise GiftError("multiple choice answers start with = or ~")
    for start, end in zip(marks, [*marks[1:], len(body)]):
        parts = _feedback_pairs(body[start + 1:end])
        if len(parts) > 2:
            raise GiftError(f"more than one # in an answer: {parts}")
        question.answers.append((body[start] == "=", parts[0], parts[1] if len(parts) > 1 else ""))


def parse_gift(text: str) -> tuple[str, list[Question]]:
    category, questions = "", []
    for block in text.split("\n\n"):
        lines = [line for line in block.strip().splitlines() if not line.startswith("//")]
        if not lines:
            continue
        if lines[0].startswith("$CATEGORY:"):
            category = lines[0].removeprefix("$CATEGORY:").strip()
            lines = lines[1:]
        if lines:
            if len(lines) != 1:
                raise GiftError("each question is one paragraph on one line here")
            questions.append(parse_question(lines[0]))
    return category, questions


def check(questions: list[Question], items) -> None:
    assert len(questions) == len(items)
    for question, item in zip(questions, items):
        assert question.title == item.id
        assert question.general, item.id
        assert all(feedback for _, _, feedback in question.answers), item.id
        rights = [answer for answer in question.answers if answer[0]]
        assert len(rights) == 1, item.id
        if item.kind == "verdict" and item.answer in ("true", "false"):
            assert question.kind == "truefalse" and rights[0][1] == item.answer
        elif item.kind == "numeric":
            assert question.kind == "numerical"
            assert question.number == (pytest.approx(float(item.answer)), pytest.approx(item.tolerance))
        else:
            assert question.kind == "multichoice" and len(question.answers) == len(item.choices)


def test_every_bank_item_survives_a_strict_parser(bank, everything):
    spec, items = everything
    category, questions = parse_gift(gift(bank, spec, items))
    assert category == "$course$/top/KQV Tutor/Everything"
    check(questions, items)
    assert {question.kind for question in questions} == {"truefalse", "multichoice", "numerical"}


def test_predictions_export_with_the_models_answer(bank, prediction_round, prediction_live):
    spec, items = prediction_round
    _, questions = parse_gift(gift(bank, spec, items, prediction_live))
    check(questions, with_answers(items, prediction_live))


def test_special_characters_in_texts_are_escaped(bank, small_round):
    spec, items = small_round
    nasty = dataclasses.replace(items[0], prompt="a = b: {c} ~d #e \\ f\n\nnew paragraph")
    _, [question] = parse_gift(gift(bank, spec, [nasty]))
    assert "a = b: {c} ~d #e \\ f" in question.text and "new paragraph" in question.text


def test_the_parser_rejects_unescaped_specials():
    with pytest.raises(GiftError):
        parse_question("::t::a = b{=x#y ~z#w}")
    with pytest.raises(GiftError):
        parse_question("::t::text{=x#y#z ~w#v}")
    with pytest.raises(GiftError):
        parse_question(r"::t::text \q {=x#y}")


def test_a_round_with_markup_and_control_characters_still_parses(bank, small_round):
    """L6: the strict parser reads every question; the category and the HTML texts show the markup as
    text and no control character (a vertical tab or form feed would also break GIFT's one-line rule)."""
    import lxml.html

    from tests.exports.hostile_round import CLAIM, PROMPT, hostile_round, readable, squash

    hostile_bank, spec, items = hostile_round(bank, small_round)
    exported = gift(hostile_bank, spec, items)
    exported.encode("utf-8")  # a lone surrogate would fail here
    assert not any(ord(char) < 32 and char != "\n" or 0x7F <= ord(char) <= 0x9F for char in exported)
    category, questions = parse_gift(exported)
    check(questions, items)
    assert category == ("$course$/top/KQV Tutor/Round b KQVBOLD b img src x onerror alert(1) quoted : x "
                        "(javascript:alert(1)) end")
    for html_text, expected in ((questions[0].text.removeprefix("[html]"), PROMPT), (questions[0].general, CLAIM)):
        fragment = lxml.html.fragment_fromstring(html_text, create_parent="div")
        assert fragment.find(".//b") is None and fragment.find(".//img") is None
        assert readable(expected) in squash(fragment.text_content())


def test_a_colon_in_the_round_title_stays_in_the_category(bank, everything):
    """Issue #14, 12: "Workshop: attention" is the instructor's title; Moodle reads the rest of the line."""
    spec, items = everything
    titled = spec.model_copy(update={"title": "Workshop: attention / day 1"})
    category, _ = parse_gift(gift(bank, titled, items[:3]))
    assert category == "$course$/top/KQV Tutor/Workshop: attention day 1"  # "/" would open a subcategory
