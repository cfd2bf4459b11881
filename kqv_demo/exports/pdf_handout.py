"""The printable handout as a PDF (fpdf2, pure Python), from the same content as the HTML one."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from PIL import Image

from kqv_demo.claim_source import SAID_IN_THE_DIALOGUE, WHERE_LEARNERS_SAY_IT, addresses
from kqv_demo.content.loader import Bank
from kqv_demo.content.schema import Claim, Reference
from kqv_demo.content.search import VERDICT_LABELS
from kqv_demo.errors import KqvError
from kqv_demo.exports.handout import Handout, KeyEntry, Question, build_handout
from kqv_demo.exports.live import PNG_PIXELS_PER_CSS_PX, PRINT_TEXT_SCALE, Figure, Live
from kqv_demo.exports.text import blocks, plain_math, strip_marks, to_plain
from kqv_demo.quiz.items import Item, numeric_rule
from kqv_demo.quiz.rounds import RoundSpec
from kqv_demo.markup import plain, visible

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/TTF"), Path("/usr/share/fonts/dejavu"))
FONT = "DejaVu"
LINE = 5.2  # mm per line of body text
FIGURE_HEIGHT_LIMIT = 215.0  # mm: the tallest figure that still fits an A4 page with its answer
# Chart text must print at 7 pt or more. A chart's smallest text is 10 CSS px in the app (Vega-Lite's axis and
# legend labels; no demo sets less), PRINT_TEXT_SCALE times that in a handout's PNG, which has
# PNG_PIXELS_PER_CSS_PX pixels per CSS px.
MIN_PRINTED_TEXT_PT = 7.0
SMALLEST_CHART_TEXT_PX = 10.0 * PRINT_TEXT_SCALE
MM_PER_PT = 25.4 / 72
FULL_CLAIMS_NOTE = ("Why each idea is tempting, what is true and what the model shows: each claim's full text is in "
                    "this round's HTML handout and on the Claims page of KQV Tutor.")


def printed_width(width_px: int, height_px: int, page_width: float) -> float:
    """The width (mm) a figure is printed at: the size at which its smallest text prints at
    MIN_PRINTED_TEXT_PT, as a figure in a paper would (larger wastes paper: Core 10 printed on 18 pages);
    never wider than the page nor taller than FIGURE_HEIGHT_LIMIT (a chart too big for a page at 7 pt is
    printed as large as the page allows)."""
    readable = (width_px / PNG_PIXELS_PER_CSS_PX) * MIN_PRINTED_TEXT_PT * MM_PER_PT / SMALLEST_CHART_TEXT_PX
    return min(page_width, FIGURE_HEIGHT_LIMIT * width_px / height_px, readable)


def printed_text_pt(width_px: int, width_mm: float) -> float:
    """The size the chart's smallest text prints at when the PNG is `width_mm` wide."""
    return SMALLEST_CHART_TEXT_PX * width_mm / (width_px / PNG_PIXELS_PER_CSS_PX) / MM_PER_PT


def font_path(name: str) -> Path:
    for folder in FONT_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise KqvError(f"The PDF handout needs the DejaVu fonts ({name}); on Debian or Ubuntu: "
                   "apt-get install fonts-dejavu-core. The HTML handout works without them.")


class _Pdf(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, size=8)
        self.set_text_color(90)
        self.cell(0, 5, f"{self.footer_text} · page {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0)


def _new_document(title: str) -> _Pdf:
    title = visible(title)
    pdf = _Pdf(format="A4")
    pdf.footer_text = title
    pdf.set_margins(16, 15, 16)
    pdf.set_auto_page_break(True, margin=17)
    pdf.add_font(FONT, "", str(font_path("DejaVuSans.ttf")))
    pdf.add_font(FONT, "B", str(font_path("DejaVuSans-Bold.ttf")))
    pdf.set_title(title)
    pdf.set_creator("KQV Tutor")
    return pdf


def _write(pdf: FPDF, text: str, size: float = 10.5, bold: bool = False, indent: float = 0.0,
           line: float = LINE, gray: int = 0) -> None:
    pdf.set_font(FONT, "B" if bold else "", size)
    pdf.set_text_color(gray)
    pdf.set_x(pdf.l_margin + indent)
    text = visible(text, keep_line_breaks=True)  # no font has glyphs for control characters
    pdf.multi_cell(pdf.epw - indent, line, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0)


def _write_bank_text(pdf: FPDF, text: str, size: float = 10.5, indent: float = 0.0) -> None:
    """A bank text: paragraphs and bullets, math as Unicode, Markdown marks dropped."""
    for kind, body in blocks(plain_math(text)):
        body = " ".join(strip_marks(body).split())
        if kind == "li":
            _write(pdf, "• " + body, size, indent=indent + 3)
        else:
            _write(pdf, body, size, indent=indent)
        pdf.ln(1)


def _ruled_lines(pdf: FPDF, count: int, label: str) -> None:
    _write(pdf, label, 8.5, gray=90, line=4.5)
    pdf.set_draw_color(150)
    for _ in range(count):
        pdf.ln(7.5)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.set_draw_color(0)
    pdf.ln(2)


def _figure(pdf: FPDF, figure: Figure) -> None:
    if figure.png is not None:
        width_px, height_px = Image.open(io.BytesIO(figure.png)).size
        width = printed_width(width_px, height_px, pdf.epw)
        height = width * height_px / width_px
        pdf.image(io.BytesIO(figure.png), x=pdf.l_margin + (pdf.epw - width) / 2, w=width, h=height,
                  alt_text=f"Figure {figure.number}: {figure.title}. {plain(figure.caption)}")
        pdf.ln(1.5)
    _write(pdf, f"Figure {figure.number}. {plain(figure.description)}",  # the headline: Markdown
           8, line=3.9, gray=40)
    pdf.ln(1.5)


def _fits(pdf: FPDF, draw: Callable[[FPDF], None]) -> bool:
    """Whether the block fits in what is left of the current page."""
    with pdf.offset_rendering() as trial:
        draw(trial)
    return not trial.page_break_triggered


def _together(pdf: FPDF, draw: Callable[[FPDF], None]) -> None:
    """Draw on a fresh page when the block would be split across two."""
    if not _fits(pdf, draw):
        pdf.add_page()
    draw(pdf)


def _question_text(pdf: FPDF, question: Question) -> None:
    item = question.item
    pdf.set_draw_color(180)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.ln(2)
    _write(pdf, f"Question {question.number}.  {question.instruction}", 10.5, bold=True)
    pdf.ln(1)
    if item.lead:
        _write_bank_text(pdf, item.lead)
    _write_bank_text(pdf, item.prompt, indent=4 if item.kind in ("verdict", "spot_the_error") else 0)


def _answer_space(pdf: FPDF, question: Question) -> None:
    if question.item.kind == "numeric":
        _write(pdf, "Your answer: ______________ " + question.item.unit, 10.5)
        _write(pdf, numeric_rule(question.item), 9)
        pdf.ln(1)
        _ruled_lines(pdf, 2, "Working:")
        return
    for choice in question.choices:
        _write(pdf, "○  " + to_plain(choice), 10.5, indent=3)
        pdf.ln(0.8)
    _ruled_lines(pdf, 2, "Why:")


def _question(pdf: FPDF, question: Question) -> None:
    _together(pdf, lambda doc: (_question_text(doc, question), _answer_space(doc, question)))
    pdf.ln(2)


def _key_text(pdf: FPDF, entry: KeyEntry) -> None:
    _write(pdf, f"{entry.number}. Answer: {to_plain(entry.answer)}", 10.5, bold=True)
    evidence = ""
    if entry.figure is not None:  # at the end of the explanation: a line of its own, nine times, cost a page
        where = ", with an earlier answer" if entry.figure_shown_before else ""
        evidence = f" (Evidence: Figure {entry.figure.number}{where}.)"
    if entry.feedback or evidence:
        _write_bank_text(pdf, entry.feedback + evidence, 9.5, indent=4)
    pdf.ln(0.5)


def _place_figures(pdf: FPDF, waiting: list[Figure]) -> None:
    """Draw the waiting figures, in order, while the page has room for them."""
    while waiting and _fits(pdf, lambda doc: _figure(doc, waiting[0])):
        _figure(pdf, waiting.pop(0))


def _answer_key(pdf: FPDF, key: list[KeyEntry]) -> None:
    """The answers in order, each figure after its answer where the page has room, else at the top of
    the next page, as a paper places its figures: a figure kept beside its answer left half-empty pages
    (Core 10's key took 7 pages)."""
    waiting: list[Figure] = []
    for entry in key:
        if not _fits(pdf, lambda doc, entry=entry: _key_text(doc, entry)):
            pdf.add_page()
            _place_figures(pdf, waiting)
        _together(pdf, lambda doc, entry=entry: _key_text(doc, entry))
        if entry.figure is not None and not entry.figure_shown_before:
            waiting.append(entry.figure)
        _place_figures(pdf, waiting)
    for figure in waiting:
        _together(pdf, lambda doc, figure=figure: _figure(doc, figure))


def _source(claim: Claim) -> str:
    """The dialogue's quote, or the addresses where learners state a public claim (as plain text:
    an address is not bank Markdown, and its underscores or asterisks must stay)."""
    if claim.origin == "public":
        return f"{WHERE_LEARNERS_SAY_IT}: " + " · ".join(addresses(claim))
    return f"{SAID_IN_THE_DIALOGUE}: “{to_plain(claim.quote)}”"


def _work(reference: Reference) -> tuple[str, int]:
    """What a reference cites, whatever the claim wrote around it (one claim gives GPT-2's report a link,
    another does not)."""
    return " ".join(reference.title.lower().split()), reference.year


def short_citation(reference: Reference) -> str:
    """A citation for paper: a list of more than two authors ("Last, F., Last, F., …") as its first author
    et al., as papers print it (Core 10's full author lists took a third of a page)."""
    parts = reference.authors.split(", ")
    looks_like_names = all(part.endswith(".") and len(part) <= 6 for part in parts[1::2])
    if len(parts) > 4 and len(parts) % 2 == 0 and looks_like_names:
        reference = reference.model_copy(update={"authors": f"{parts[0]}, {parts[1]}, et al."})
    return reference.cite()


def numbered_references(claims: list[Claim]) -> dict[tuple[str, int], tuple[int, Reference]]:
    """Each work the claims cite, numbered in order of first use, as first cited (or the first with a link)."""
    works: dict[tuple[str, int], tuple[int, Reference]] = {}
    for claim in claims:
        for reference in claim.references:
            number, first = works.get(_work(reference), (len(works) + 1, reference))
            works[_work(reference)] = number, first if first.url or not reference.url else reference
    return works


def _claim(pdf: FPDF, claim: Claim, questions: list[int], works: dict[tuple[str, int], tuple[int, Reference]]) -> None:
    asked_in = ("Questions " if len(questions) > 1 else "Question ") + ", ".join(map(str, questions))
    _write(pdf, f"{asked_in} · {VERDICT_LABELS[claim.verdict]}: {to_plain(claim.refutation.claim)}", 9, bold=True,
           line=4.3)
    cited = ", ".join(f"[{number}]"
                      for number in sorted({works[_work(reference)][0] for reference in claim.references}))
    _write(pdf, _source(claim) + (f" · Sources: {cited}." if cited else ""), 8, indent=4, line=3.9, gray=40)
    pdf.ln(2)


def _claims(pdf: FPDF, handout: Handout) -> None:
    """Each claim in a few lines, with its sources numbered once: the full refutation texts took 8 pages of
    Core 10's 18. They are in the HTML handout and on the Claims page, which the note says."""
    if not handout.claims:
        return
    works = numbered_references(handout.claims)

    def heading(doc: FPDF) -> None:
        doc.ln(3)
        _write(doc, "Part 3 · The claims behind the questions", 14, bold=True, line=8)
        _write(doc, FULL_CLAIMS_NOTE, 8.5, line=4.3, gray=70)
        doc.ln(1.5)

    for index, claim in enumerate(handout.claims):
        questions = [entry.number for entry in handout.key if entry.item.claim_id == claim.id]
        _together(pdf, lambda doc, claim=claim, questions=questions, first=index == 0: (
            heading(doc) if first else None, _claim(doc, claim, questions, works)))  # no heading alone at a page's foot
    if works:
        _together(pdf, lambda doc: _write(doc, "References", 10.5, bold=True))
    for number, reference in works.values():
        _together(pdf, lambda doc, number=number, reference=reference: _write(
            doc, f"[{number}] {to_plain(short_citation(reference))}", 8, indent=4, line=3.7))


def render(handout: Handout) -> bytes:
    pdf = _new_document(handout.title)
    pdf.add_page()
    _write(pdf, handout.title, 18, bold=True, line=9)
    _write(pdf, handout.description, 10.5)
    _write(pdf, handout.note, 8.5, line=4.3, gray=70)
    pdf.ln(2)
    _write(pdf, "Name: ________________________________", 10.5)
    pdf.ln(3)
    _write(pdf, "Part 1 · Questions", 14, bold=True, line=8)
    pdf.ln(1)
    for question in handout.questions:
        _question(pdf, question)
    pdf.add_page()
    _write(pdf, "Part 2 · Answer key", 14, bold=True, line=8)
    pdf.ln(1)
    _answer_key(pdf, handout.key)
    _claims(pdf, handout)
    return bytes(pdf.output())


def handout_pdf(bank: Bank, spec: RoundSpec, items: list[Item], live: Live, made_on: date | None = None) -> bytes:
    """The handout of a round as PDF bytes; `live` (from `run_live`) holds the figures and prediction answers."""
    return render(build_handout(bank, spec, items, live, made_on))
