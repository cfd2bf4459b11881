"""Moodle XML parses back with the expected questions, types, fractions and feedback."""

from __future__ import annotations

import lxml.html
from lxml import etree

from kqv_demo.exports.handout import shown
from kqv_demo.exports.live import with_answers
from kqv_demo.exports.moodle import moodle_xml
from kqv_demo.exports.text import mathjax_math, strip_marks


def _parse(text: str) -> etree._Element:
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<quiz>')
    return etree.fromstring(text.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))


def _expected_type(item) -> str:
    if item.kind == "verdict" and item.answer in ("true", "false"):
        return "truefalse"
    return "numerical" if item.kind == "numeric" else "multichoice"


def check_quiz(root, items, bank) -> None:
    questions = root.findall("question")
    assert questions[0].get("type") == "category"
    assert questions[0].findtext("category/text").startswith("$course$/top/KQV Tutor/")
    questions = questions[1:]
    assert len(questions) == len(items)
    for question, item in zip(questions, items):
        assert question.findtext("name/text") == item.id
        assert question.get("type") == _expected_type(item), item.id
        answers = question.findall("answer")
        right = [answer for answer in answers if answer.get("fraction") == "100"]
        assert len(right) == 1, item.id
        assert all(answer.get("fraction") in ("0", "100") for answer in answers)
        assert all(answer.findtext("feedback/text").strip() for answer in answers), item.id
        body = lxml.html.fromstring(question.findtext("questiontext/text")).text_content()
        assert "$" not in body.replace("$lookup", "")
        if question.get("type") == "truefalse":
            assert sorted(answer.findtext("text") for answer in answers) == ["false", "true"]
            assert right[0].findtext("text") == item.answer
        elif question.get("type") == "multichoice":
            assert question.findtext("single") == "true" and question.findtext("shuffleanswers") == "1"
            assert len(answers) == len(item.choices)
            expected = " ".join(strip_marks(mathjax_math(shown(item, item.answer))).split())
            assert lxml.html.fromstring(right[0].findtext("text")).text_content() == expected
            claim = bank.claims[item.claim_id]
            general = lxml.html.fromstring(question.findtext("generalfeedback/text")).text_content()
            assert claim.references[0].title in general
        else:
            assert float(right[0].findtext("text")) == float(item.answer)
            assert float(right[0].findtext("tolerance")) == item.tolerance


def test_every_bank_item_exports_to_moodle(bank, everything):
    spec, items = everything
    root = _parse(moodle_xml(bank, spec, items))
    check_quiz(root, items, bank)
    types = {question.get("type") for question in root.findall("question")}
    assert types == {"category", "truefalse", "multichoice", "numerical"}


def test_math_goes_to_mathjax_delimiters(bank, small_round):
    import dataclasses

    spec, items = small_round
    with_math = dataclasses.replace(items[0], prompt=r"Why divide by $\sqrt{d_k}$?")
    root = _parse(moodle_xml(bank, spec, [with_math]))
    assert r"Why divide by \(\sqrt{d_k}\)?" in root.findall("question")[1].findtext("questiontext/text")


def test_predictions_take_the_models_answer(bank, prediction_round, prediction_live):
    spec, items = prediction_round
    root = _parse(moodle_xml(bank, spec, items, prediction_live))
    answered = with_answers(items, prediction_live)
    check_quiz(root, answered, bank)
    softmax = next(item for item in answered if item.id == "softmax-turns-scores-into-attention-distribution:predict")
    # SmolLM2 is causal: its attention weights on later tokens are exactly zero
    assert softmax.answer == "Everything above the diagonal (weights on later tokens)"
    depth = next(item for item in answered if item.id == "number-of-layers-is-decided-dynamically:predict")
    assert depth.answer == "All of them, for both prompts"
    assert "30" in depth.explanation  # the reveal reports the blocks the model actually ran


def test_hostile_text_stays_inside_cdata(bank, small_round):
    import dataclasses

    spec, items = small_round
    hostile = dataclasses.replace(items[0], prompt="]]><evil/> & <b>x</b>")
    root = _parse(moodle_xml(bank, spec, [hostile, *items[1:]]))
    text = root.findall("question")[1].findtext("questiontext/text")
    assert "<evil/>" not in text and "]]&gt;&lt;evil/&gt; &amp; &lt;b&gt;x&lt;/b&gt;" in text


def test_a_round_with_markup_and_control_characters_still_parses(bank, small_round):
    """L6: a title, a question and a claim with markup and control characters (\\x00, \\x1b, a lone
    surrogate, U+FFFE...): XML 1.0 allows none of them, so Moodle would refuse the whole file."""
    from tests.exports.hostile_round import CLAIM, PROMPT, TITLE, hostile_round, readable, squash

    hostile_bank, spec, items = hostile_round(bank, small_round)
    root = _parse(moodle_xml(hostile_bank, spec, items))
    check_quiz(root, items, hostile_bank)
    category, first = root.findall("question")[:2]
    assert category.findtext("category/text") == "$course$/top/KQV Tutor/" + readable(TITLE).replace("/", "//")
    for html_text, expected in ((category.findtext("info/text"), TITLE),
                                (first.findtext("questiontext/text"), PROMPT),
                                (first.findtext("generalfeedback/text"), CLAIM)):
        fragment = lxml.html.fragment_fromstring(html_text, create_parent="div")
        assert fragment.find(".//b") is None and fragment.find(".//img") is None  # the markup stays text
        assert readable(expected) in squash(fragment.text_content())


def test_a_spot_the_error_question_is_introduced_by_who_wrote_its_text(bank):
    from kqv_demo.exports.moodle import question_html
    from kqv_demo.quiz.items import items_for_claim

    item = next(i for i in items_for_claim(bank.claims["slides-are-about-nosql-databases"])
                if i.kind == "spot_the_error")
    shown = question_html(item)
    assert shown.index("Understanding keys, queries") < shown.index("<blockquote>")
