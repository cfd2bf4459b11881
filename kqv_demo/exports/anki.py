"""Anki deck (.apkg, genanki). Fixed model and deck ids, and note guids from item ids, so
importing a newer export updates the same cards instead of adding copies."""

from __future__ import annotations

import hashlib
import html
import tempfile
from pathlib import Path

import genanki

from kqv_demo.content.loader import Bank
from kqv_demo.content.search import VERDICT_LABELS
from kqv_demo.exports.handout import INSTRUCTIONS, answer_feedback, shown
from kqv_demo.exports.live import Figure, Live, with_answers
from kqv_demo.exports.text import mathjax_math, to_html
from kqv_demo.markup import plain, visible
from kqv_demo.quiz.items import Item, numeric_rule
from kqv_demo.quiz.rounds import RoundSpec

MODEL_ID = 1834619649  # chosen once at random; never change (Anki matches models by id)
DECK_ID = 1483038042
DECK_NAME = "KQV Tutor"
FIELDS = ("Question", "Answer", "Explanation", "Claim", "References")

MODEL = genanki.Model(
    MODEL_ID, "KQV Tutor question",
    fields=[{"name": name} for name in FIELDS],
    templates=[{
        "name": "Question",
        "qfmt": "{{Question}}",
        "afmt": '{{FrontSide}}<hr id="answer"><p class="answer">{{Answer}}</p>{{Explanation}}'
                '<div class="claim">{{Claim}}</div><div class="refs">{{References}}</div>',
    }],
    css=".card { font-family: sans-serif; font-size: 18px; text-align: left; color: #111; background: #fff; }"
        ".answer { font-weight: bold; } .claim { margin-top: 1em; padding-top: .5em; border-top: 1px solid #ccc; }"
        ".refs { font-size: 14px; color: #444; margin-top: .8em; } blockquote { font-style: italic; }",
)


def _html(text: str, inline: bool = False) -> str:
    return to_html(text, math=mathjax_math, inline=inline)


def _question(item: Item) -> str:
    body = _html(item.prompt)
    if item.kind in ("verdict", "spot_the_error"):
        body = f"<blockquote>{body}</blockquote>"
    if item.lead:
        body = f"<p>{_html(item.lead, True)}</p>{body}"
    choices = "".join(f"<li>{_html(shown(item, choice), True)}</li>" for choice in item.choices)
    unit = f"<p>{_html(numeric_rule(item), True)}</p>" if item.kind == "numeric" else ""
    return (f"<p><strong>{INSTRUCTIONS[item.kind]}</strong></p>{body}"
            + (f"<ol type=\"a\">{choices}</ol>" if choices else unit))


def media_name(figure: Figure) -> str:
    """Named by content: Anki keeps media in one folder per collection, so names must not collide,
    and a re-export of the same figure must reuse the file rather than add a copy."""
    return f"kqv-{figure.demo_id}-{hashlib.sha256(figure.png or b'').hexdigest()[:12]}.png"


def card_figure(figure: Figure) -> str:
    caption = html.escape(visible(plain(figure.description)))  # the demo's headline: Markdown
    return (f'<div class="figure"><img src="{media_name(figure)}" style="max-width:100%;height:auto" '
            f'alt="{html.escape(figure.title + ". " + plain(figure.caption))}">'
            f'<p style="font-size:13px;color:#444">{caption}</p></div>')


def note_fields(bank: Bank, item: Item, figure: Figure | None = None) -> list[str]:
    claim = bank.claims.get(item.claim_id)
    claim_html = references = ""
    if claim is not None:
        claim_html = (f"<p><strong>{VERDICT_LABELS[claim.verdict]}:</strong> {_html(claim.refutation.claim, True)}</p>"
                      f"{_html(claim.refutation.verdict)}")
        references = "<ul>" + "".join(
            f"<li>{_html(reference.cite(), True)}</li>" for reference in claim.references) + "</ul>"
    explanation = _html(answer_feedback(item, item.answer))
    if figure is not None and figure.png is not None:
        explanation += card_figure(figure)  # the back of the card: it may show the answer
    return [_question(item), _html(shown(item, item.answer), True), explanation, claim_html, references]


def note_tags(bank: Bank, item: Item) -> list[str]:
    claim = bank.claims.get(item.claim_id)
    tags = [f"kind::{item.kind}"]
    if claim is not None:
        tags += [f"topic::{topic}" for topic in claim.topics]
        tags += [f"verdict::{claim.verdict}", f"source::{claim.origin}"]  # dialogue or public
    return tags


def anki_deck(bank: Bank, spec: RoundSpec, items: list[Item], live: Live | None = None) -> bytes:
    """The round as an .apkg file's bytes. Prediction items need `live` (their answers come from the
    model); with `live` figures, each card's back shows the live demo's figure for its claim."""
    # Anki shows the description as HTML: the title (typed or uploaded by an instructor) is text.
    title = html.escape(visible(spec.title))
    deck = genanki.Deck(DECK_ID, DECK_NAME, description=f"Questions from KQV Tutor. Last import: {title}.")
    media: dict[str, bytes] = {}
    for item in with_answers(items, live):
        figure = live.figure_for(item) if live is not None else None
        if figure is not None and figure.png is not None:
            media[media_name(figure)] = figure.png
        deck.add_note(genanki.Note(model=MODEL, fields=note_fields(bank, item, figure), tags=note_tags(bank, item),
                                   guid=genanki.guid_for(item.id)))
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for name, png in media.items():
            (Path(folder) / name).write_bytes(png)
            files.append(str(Path(folder) / name))
        path = Path(folder) / "deck.apkg"
        genanki.Package(deck, media_files=files).write_to_file(str(path))
        return path.read_bytes()
