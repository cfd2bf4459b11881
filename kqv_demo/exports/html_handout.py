"""The printable handout as one self-contained HTML file: inline CSS, figures as data URIs."""

from __future__ import annotations

import base64
import html
import io
from datetime import date

from PIL import Image

from kqv_demo.claim_source import SAID_IN_THE_DIALOGUE, WHERE_LEARNERS_SAY_IT, addresses
from kqv_demo.content.loader import Bank
from kqv_demo.content.schema import Claim, Reference
from kqv_demo.content.search import VERDICT_LABELS
from kqv_demo.exports.handout import Handout, KeyEntry, Question, build_handout
from kqv_demo.exports.live import PNG_PIXELS_PER_CSS_PX, Figure, Live
from kqv_demo.exports.text import to_html
from kqv_demo.markup import plain, visible
from kqv_demo.quiz.items import Item, numeric_rule
from kqv_demo.quiz.rounds import RoundSpec

CSS = """
@page { size: A4; margin: 15mm 16mm 17mm; }
* { box-sizing: border-box; }
body { font: 11pt/1.45 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #111; max-width: 52em;
       margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 20pt; margin: 0 0 .2em; }
h2 { font-size: 15pt; border-bottom: 2px solid #111; padding-bottom: .15em; margin: 1.4em 0 .6em; }
h3 { font-size: 11.5pt; margin: 0 0 .35em; }
.description { margin: 0 0 .4em; }
.note { font-size: 9.5pt; color: #444; margin: 0 0 .8em; }
.name { margin: .6em 0 0; }
.blank { display: inline-block; min-width: 16em; border-bottom: 1px solid #111; height: 1.2em; vertical-align: bottom; }
.blank.short { min-width: 8em; }
.question { break-inside: avoid; page-break-inside: avoid; border-top: 1px solid #bbb; padding: .7em 0 .5em; }
.instruction { font-weight: normal; color: #444; }
blockquote { margin: .3em 0 .5em; padding: .2em .8em; border-left: 3px solid #888; font-style: italic; }
.prompt p { margin: .2em 0 .4em; }
ul.choices { list-style: none; padding: 0; margin: .3em 0 .4em; }
ul.choices li { margin: .25em 0; padding-left: 1.7em; text-indent: -1.7em; }
.circle { display: inline-block; width: .95em; height: .95em; border: 1.4px solid #111; border-radius: 50%;
          margin-right: .7em; vertical-align: -.12em; text-indent: 0; }
.lines div { border-bottom: 1px solid #999; height: 1.9em; }
.lines-label { font-size: 9pt; color: #555; margin: .4em 0 0; }
figure { margin: .5em 0 .6em; break-inside: avoid; page-break-inside: avoid; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { font-size: 9pt; color: #333; margin-top: .3em; }
.see { font-size: 9.5pt; color: #444; }
.answer-key { break-before: page; page-break-before: always; }
.key-entry { break-inside: avoid; page-break-inside: avoid; margin: 0 0 .7em; }
.key-entry p { margin: .15em 0 .3em; }
.claim { break-inside: avoid-page; border-top: 1px solid #bbb; padding-top: .6em; margin-top: .6em; }
.claim dt { font-weight: bold; margin-top: .35em; }
.claim dd { margin: 0 0 .2em; }
.claim dd p { margin: .1em 0 .3em; }
.refs { font-size: 9.5pt; padding-left: 1.2em; }
.refs a { color: #0b4f8a; word-break: break-all; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 92%; }
@media print {
  body { margin: 0; max-width: none; padding: 0; }
  a { color: inherit; text-decoration: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
}
"""


def _e(text: str) -> str:
    """Text (a round's title, a caption) shown as text: escaped, without control characters."""
    return html.escape(visible(text, keep_line_breaks=True), quote=True)


def figure_html(figure: Figure) -> str:
    caption = (f"<figcaption><strong>Figure {figure.number}. {_e(figure.title)}</strong>, "
               f"computed {_e(figure.inputs)}. "
               f"{_e(plain(figure.caption))}</figcaption>")  # the demo's headline: Markdown
    if figure.png is None:
        return f"<figure>{caption}</figure>"
    data = base64.b64encode(figure.png).decode("ascii")
    alt = _e(f"Figure {figure.number}: {figure.title}. {plain(figure.caption)}")  # with the numbers it shows
    # At its natural size (the PNG has 2 pixels per CSS px): its 10 px labels print at 7.5 pt, not shrunk
    # to fit a height (they printed at 4-5 pt); only a chart wider than the page is scaled to fit it.
    width = Image.open(io.BytesIO(figure.png)).size[0] / PNG_PIXELS_PER_CSS_PX
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{alt}" style="width: {width:.0f}px">'
            f"{caption}</figure>")


def _prompt(item: Item) -> str:
    lead = f"<p>{to_html(item.lead, inline=True)}</p>" if item.lead else ""
    if item.kind in ("verdict", "spot_the_error"):
        return f"{lead}<blockquote>{to_html(item.prompt)}</blockquote>"
    return f'<div class="prompt">{to_html(item.prompt)}</div>'


def _answer_space(question: Question) -> str:
    if question.item.kind == "numeric":
        unit = f" {_e(question.item.unit)}" if question.item.unit else ""
        return (f'<p>Your answer: <span class="blank short"></span>{unit}</p>'
                f'<p class="rule">{_e(numeric_rule(question.item))}</p>'
                '<p class="lines-label">Working:</p><div class="lines"><div></div><div></div></div>')
    choices = "".join(f'<li><span class="circle"></span>{to_html(choice, inline=True)}</li>'
                      for choice in question.choices)
    return (f'<ul class="choices">{choices}</ul>'
            '<p class="lines-label">Why:</p><div class="lines"><div></div><div></div></div>')


def question_html(question: Question) -> str:
    return (f'<article class="question" id="q{question.number}"><h3>Question {question.number}. '
            f'<span class="instruction">{_e(question.instruction)}</span></h3>'
            f"{_prompt(question.item)}{_answer_space(question)}</article>")


def key_html(entry: KeyEntry) -> str:
    figure = ""
    if entry.figure is not None:
        figure = (f'<p class="see">Evidence: see Figure {entry.figure.number} above.</p>'
                  if entry.figure_shown_before else figure_html(entry.figure))
    return (f'<div class="key-entry"><h3>{entry.number}. Answer: {to_html(entry.answer, inline=True)}</h3>'
            f"{to_html(entry.feedback) if entry.feedback else ''}{figure}</div>")


def reference_html(reference: Reference) -> str:
    venue = f" {_e(reference.venue)}." if reference.venue else ""
    link = f' <a href="{_e(str(reference.url))}">{_e(str(reference.url))}</a>' if reference.url else ""
    return f"<li>{_e(reference.authors)} ({reference.year}). <cite>{_e(reference.title)}</cite>.{venue}{link}</li>"


def refutation_rows(claim: Claim) -> list[tuple[str, str]]:
    """(label, bank text) for the refutation text, in the order a reader needs it. Where the claim
    comes from is printed before these rows (`source_html`), since public claims have no quote."""
    refutation = claim.refutation
    rows = [("Verdict", refutation.verdict)]
    if refutation.right_part:
        rows.append(("What is right about it", refutation.right_part))
    rows += [("Why it is tempting", refutation.tempting), ("What is true", refutation.truth)]
    if claim.no_demo:  # no model run shows it: the evidence rests on the references
        rows += [("The evidence", refutation.evidence), ("Why there is no live demo", claim.no_demo)]
    else:
        rows.append(("What the model shows", refutation.evidence))
    return rows


def source_html(claim: Claim) -> str:
    """The dialogue's quote, or the addresses where learners state a public claim, each a link to
    exactly that address (escaped: the address is never read as markup)."""
    if claim.origin == "public":
        links = "".join(f'<li><a href="{_e(address)}">{_e(address)}</a></li>' for address in addresses(claim))
        return f'<dt>{WHERE_LEARNERS_SAY_IT}</dt><dd><ul class="refs">{links}</ul></dd>'
    return f"<dt>{SAID_IN_THE_DIALOGUE}</dt><dd>{to_html(f'“{claim.quote}”')}</dd>"


def claim_html(claim: Claim) -> str:
    rows = source_html(claim) + "".join(
        f"<dt>{_e(label)}</dt><dd>{to_html(text)}</dd>" for label, text in refutation_rows(claim))
    references = "".join(reference_html(reference) for reference in claim.references)
    return (f'<article class="claim"><h3>{_e(VERDICT_LABELS[claim.verdict])}: '
            f'{to_html(claim.refutation.claim, inline=True)}</h3>'
            f'<dl>{rows}</dl><p><strong>References</strong></p><ul class="refs">{references}</ul></article>')


def render(handout: Handout) -> str:
    questions = "".join(question_html(question) for question in handout.questions)
    key = "".join(key_html(entry) for entry in handout.key)
    claims = "".join(claim_html(claim) for claim in handout.claims)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(handout.title)}: handout</title>"
        f"<style>{CSS}</style></head><body>"
        f"<header><h1>{_e(handout.title)}</h1>"
        f'<p class="description">{_e(handout.description)}</p><p class="note">{_e(handout.note)}</p>'
        '<p class="name">Name: <span class="blank"></span></p></header>'
        f'<section class="questions"><h2>Part 1 · Questions</h2>{questions}</section>'
        f'<section class="answer-key"><h2>Part 2 · Answer key</h2>{key}'
        f"<h2>The claims behind the questions</h2>{claims}</section>"
        "</body></html>\n"
    )


def handout_html(bank: Bank, spec: RoundSpec, items: list[Item], live: Live, made_on: date | None = None) -> str:
    """The handout of a round; `live` (from `run_live`) holds the figures and the prediction answers."""
    return render(build_handout(bank, spec, items, live, made_on))
