"""The printable handout, HTML and PDF, with figures computed by the real models."""

from __future__ import annotations

import base64
import dataclasses
import io
import re

import lxml.html
import pypdf
from types import SimpleNamespace
import pytest

from kqv_demo.exports.handout import shown
from kqv_demo.exports.html_handout import handout_html
from kqv_demo.exports.live import run_live, with_answers
from kqv_demo.exports.pdf_handout import handout_pdf
from kqv_demo.exports.text import to_plain
from kqv_demo.markup import plain


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _runs(live, items) -> set:
    """Every distinct live run the items' figures come from (claims' demos and predictions)."""
    return {key for key in (live.prediction_figure.get(item.id) if item.kind == "predict"
                            else live.claim_figure.get(item.claim_id) for item in items) if key is not None}


def test_html_has_every_question_and_a_key_with_a_figure_per_demo_run(bank, small_round, small_live):
    spec, items = small_round
    page = handout_html(bank, spec, items, small_live)
    tree = lxml.html.fromstring(page)
    questions, key = tree.find_class("questions")[0], tree.find_class("answer-key")[0]
    question_text = _squash(questions.text_content())
    for item in items:
        assert _squash(to_plain(item.prompt)) in question_text, item.id
        for choice in item.choices:
            assert _squash(to_plain(shown(item, choice))) in question_text
    runs = _runs(small_live, items)
    assert not questions.findall(".//img") and "Figure" not in questions.text_content()
    images = key.findall(".//img")  # beside the answers they show, each run once
    assert len(runs) >= 2 and len(images) == len(runs)
    captions = {figure.number: plain(figure.caption) for figure in small_live.figures.values()}
    for image in images:  # each image's text alternative gives the numbers it shows (issue #14)
        number = int(re.match(r"Figure (\d+): ", image.get("alt")).group(1))
        assert captions[number] and captions[number] in image.get("alt")
        source = image.get("src")
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    key_text = _squash(key.text_content())
    for item in items:
        assert _squash("Answer:" + to_plain(shown(item, item.answer))) in key_text
        claim = bank.claims[item.claim_id]
        assert _squash(claim.references[0].title) in key_text
        assert _squash(to_plain(claim.refutation.tempting)) in key_text


def test_html_is_self_contained_and_prints_the_key_on_a_new_page(bank, small_round, small_live):
    spec, items = small_round
    page = handout_html(bank, spec, items, small_live)
    assert not re.search(r"""(src|href)=["']?(https?:)?//[^"']*\.(css|js|png|woff2?)"""
                         r"""|<link|<script|@import|url\(""", page)
    assert re.search(r"@media print", page) and re.search(r"\.answer-key \{ break-before: page;", page)
    assert "\\" not in lxml.html.fromstring(page).text_content()


def test_html_escapes_bank_text(bank, small_round, small_live):
    spec, items = small_round
    hostile = dataclasses.replace(items[0], prompt="<img src=x onerror=alert(1)> & **bold**")
    page = handout_html(bank, spec, [hostile], small_live)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt; &amp; <strong>bold</strong>" in page


def test_no_figure_stands_beside_a_question_to_give_its_answer_away(bank, prediction_round, runtime):
    """Issue #14, 2: a figure titled "Dot product, not KL divergence" beside "how does a head score query-key
    pairs?" answers it. Every figure is in the key; the questions part names no figure, no figure title and
    no caption holding an item's right option or numeric answer."""
    spec, items = prediction_round
    live = run_live(bank, items, runtime)
    tree = lxml.html.fromstring(handout_html(bank, spec, items, live))
    questions, key = tree.find_class("questions")[0], tree.find_class("answer-key")[0]
    predictions = [item for item in with_answers(items, live) if item.kind == "predict"]
    assert len(key.findall(".//img")) >= len(predictions)
    key_text = _squash(key.text_content())
    for item in predictions:
        assert _squash(f"Answer:{item.answer}") in key_text
    assert "prediction question" in tree.find_class("note")[0].text_content()
    assert not questions.findall(".//img") and not questions.find_class("see")
    questions_text = _squash(questions.text_content())
    for figure in live.figures.values():
        assert _squash(figure.title) not in questions_text and _squash(plain(figure.caption)) not in questions_text


def test_pdf_text_has_every_question_and_the_key_starts_a_page(bank, small_round, small_live):
    spec, items = small_round
    pdf = handout_pdf(bank, spec, items, small_live)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    pages = [page.extract_text() for page in reader.pages]
    key_page = next(index for index, text in enumerate(pages) if "Part 2 · Answer key" in text)
    assert pages[key_page].lstrip().startswith("Part 2 · Answer key")
    questions_text = _squash("".join(pages[:key_page]))
    for item in items:
        assert _squash(to_plain(item.prompt)) in questions_text, item.id
    key_text = _squash("".join(pages[key_page:]))
    for item in items:
        assert _squash(f"Answer:{to_plain(shown(item, item.answer))}") in key_text, item.id
    assert sum(len(page.images) for page in reader.pages[:key_page]) == 0  # figures show answers: key only
    assert sum(len(page.images) for page in reader.pages[key_page:]) == len(_runs(small_live, items))


def test_a_round_with_markup_and_control_characters_shows_them_as_text(bank, small_round):
    """L6: the HTML handout parses and shows the title, a question and a claim as text; the PDF is
    built (no font has glyphs for control characters) and reads the same."""
    from tests.exports.hostile_round import CLAIM, CONTROL, PROMPT, TITLE, hostile_round, no_figures, readable, squash

    hostile_bank, spec, items = hostile_round(bank, small_round)
    page = handout_html(hostile_bank, spec, items, no_figures())
    page.encode("utf-8")
    assert not any(char in page for char in CONTROL)
    tree = lxml.html.fromstring(page)
    assert tree.findtext(".//title").startswith(readable(TITLE))
    assert squash(tree.find(".//h1").text_content()) == readable(TITLE)
    assert tree.find(".//b") is None and not [image for image in tree.iter("img") if image.get("src") == "x"]
    text = squash(tree.text_content())
    assert readable(PROMPT) in text and readable(CLAIM) in text
    reader = pypdf.PdfReader(io.BytesIO(handout_pdf(hostile_bank, spec, items, no_figures())))
    assert reader.metadata.title == readable(TITLE)
    pdf_text = _squash("".join(page.extract_text() for page in reader.pages))
    for expected in (TITLE, PROMPT, CLAIM):
        assert _squash(readable(expected)) in pdf_text, expected


def test_figure_captions_read_the_demos_markdown_headline_as_text():
    """A caption is the demo's headline, which is Markdown with the model's tokens escaped
    (`mat\\.`): the handout, the PDF and the Anki card show the tokens, not the escapes."""
    from fpdf import FPDF

    from kqv_demo.demos import kv_cache
    from kqv_demo.exports.anki import card_figure
    from kqv_demo.exports.html_handout import figure_html
    from kqv_demo.exports.live import Figure
    from kqv_demo.exports.pdf_handout import FONT, _figure, font_path
    from kqv_demo.markup import literal

    caption = f"Generated: {literal('the mat. [x](y) a->b')}"
    assert "\\" in caption  # escaped for the app
    figure = Figure(1, kv_cache.DEMO.id, kv_cache.DEMO.title, caption, "on “The cat”", None)
    for page in (figure_html(figure), card_figure(figure)):
        assert ("Generated: the mat. [x](y) a->b"
                in lxml.html.fragment_fromstring(page, create_parent="div").text_content())
    pdf = FPDF()
    pdf.add_font(FONT, "", str(font_path("DejaVuSans.ttf")))
    pdf.add_font(FONT, "B", str(font_path("DejaVuSans-Bold.ttf")))
    pdf.add_page()
    _figure(pdf, figure)
    text = _squash(pypdf.PdfReader(io.BytesIO(bytes(pdf.output()))).pages[0].extract_text())
    assert _squash("Generated: the mat. [x](y) a->b") in text


def test_core_10_prints_on_8_pages_with_chart_text_at_7_pt(bank, runtime):
    """Issue #14, 4: Core 10 printed on 18 A4 pages, one half-empty page per question, its chart labels at
    4-5 pt. It now takes at most 8 pages: the questions on at most 3, the key from a fresh page, and every
    chart's smallest text at 7 pt or more."""
    from kqv_demo.exports.pdf_handout import MIN_PRINTED_TEXT_PT, printed_text_pt, printed_width
    from kqv_demo.classroom.resolve import resolve_round
    from kqv_demo.quiz.resolve import round_items
    from PIL import Image

    spec = resolve_round(bank, "core-10")
    items = round_items(bank, spec)
    live = run_live(bank, items, runtime)
    reader = pypdf.PdfReader(io.BytesIO(handout_pdf(bank, spec, items, live)))
    assert len(reader.pages) <= 8, len(reader.pages)
    key_page = next(index for index, page in enumerate(reader.pages) if "Part 2 · Answer key" in page.extract_text())
    assert key_page <= 3, key_page
    page_width = float(reader.pages[0].mediabox.width) * 25.4 / 72 - 2 * 16  # A4 less the 16 mm side margins
    sizes = [Image.open(io.BytesIO(figure.png)).size for figure in live.figures.values() if figure.png]
    assert len(sizes) == sum(len(page.images) for page in reader.pages) == 9
    for width_px, height_px in sizes:
        assert printed_text_pt(width_px, printed_width(width_px, height_px, page_width)) >= MIN_PRINTED_TEXT_PT


def test_a_pdf_figure_prints_with_its_text_at_7_pt_within_the_page():
    from kqv_demo.exports.pdf_handout import FIGURE_HEIGHT_LIMIT, printed_text_pt, printed_width

    for width_px, height_px in ((1240, 700), (1400, 1200), (600, 400)):
        assert printed_text_pt(width_px, printed_width(width_px, height_px, 178)) == pytest.approx(7.0)
    tall = printed_width(800, 3000, 178)  # never taller than a page allows
    assert tall * 3000 / 800 == pytest.approx(FIGURE_HEIGHT_LIMIT)
    assert printed_width(3000, 600, 178) == 178  # never wider than the page


def test_the_pdf_cites_each_work_once_and_shortens_long_author_lists():
    from kqv_demo.content.schema import Reference
    from kqv_demo.exports.pdf_handout import numbered_references, short_citation

    gpt2 = dict(authors="Radford, A., Wu, J., Child, R.", title="Language Models are Unsupervised Multitask Learners",
                year=2019, venue="OpenAI technical report.")
    linked = Reference(**gpt2, url="https://example.org/gpt2.pdf")
    vaswani = Reference(authors="Vaswani, A., Shazeer, N., Parmar, N.", title="Attention Is All You Need", year=2017)
    first = SimpleNamespace(references=[Reference(**gpt2), vaswani])
    second = SimpleNamespace(references=[vaswani, linked])
    works = numbered_references([first, second])
    assert [number for number, _ in works.values()] == [1, 2]  # GPT-2 once, though cited with and without link
    assert [reference.url for _, reference in works.values()][0] is not None  # the one with the link
    assert short_citation(vaswani).startswith("Vaswani, A., et al. (2017). Attention Is All You Need.")
    two = Reference(authors="Li, X. L., Liang, P.", title="Prefix-Tuning", year=2021)
    assert short_citation(two).startswith("Li, X. L., Liang, P. (2021)")
    assert short_citation(Reference(authors="He, H., Thinking Machines Lab", title="T", year=2025)).startswith(
        "He, H., Thinking")
    question = Reference(authors="Michel, P., Levy, O., Neubig, G.", title="Are Sixteen Heads Really Better than One?",
                         year=2019)
    assert "One? (2019)" not in short_citation(question) and "One?." not in short_citation(question)


def test_a_figures_text_alternative_is_escaped_in_the_handout_and_the_anki_card():
    from PIL import Image

    from kqv_demo.exports.anki import card_figure
    from kqv_demo.exports.html_handout import figure_html
    from kqv_demo.exports.live import Figure

    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, format="PNG")
    hostile = '"><script>alert(1)</script><img src=x onerror="alert(2)'
    figure = Figure(3, "attention-by-hand", f"Title {hostile}", f"Caption {hostile}", "on “x”", png.getvalue())
    for page in (figure_html(figure), card_figure(figure)):
        tree = lxml.html.fragment_fromstring(page, create_parent="div")
        images = tree.findall(".//img")
        assert len(images) == 1 and not tree.findall(".//script"), page
        assert images[0].get("onerror") is None and f"Title {hostile}" in images[0].get("alt")
