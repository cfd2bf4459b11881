"""Claims from public posts have no quote, speaker or line: every export says where learners state them."""

from __future__ import annotations

import io
import json
import re

import lxml.html
import pypdf
import pytest

from kqv_demo.claim_source import addresses
from kqv_demo.content.loader import Bank
from kqv_demo.exports.anki import anki_deck, note_fields, note_tags
from kqv_demo.exports.gift import gift
from kqv_demo.exports.html_handout import claim_html, handout_html
from kqv_demo.exports.live import Live
from kqv_demo.exports.moodle import moodle_xml
from kqv_demo.exports.pdf_handout import handout_pdf
from kqv_demo.quiz.items import Item
from kqv_demo.quiz.resolve import round_items
from kqv_demo.quiz.rounds import MAX_ROUND_ITEMS, RoundSpec

NONE = re.compile(r"\bNone\b")


def _says_none(claim) -> bool:
    return bool(NONE.search(json.dumps(claim.model_dump(mode="json"), ensure_ascii=False)))


@pytest.fixture(scope="module")
def mixed_round(bank: Bank) -> tuple[RoundSpec, list[Item]]:
    """Every public claim whose own text never says "None", and two dialogue claims: a "None" in an
    export of this round can only come from a missing quote, speaker or line."""
    usable = [claim for claim in bank.claims.values() if not _says_none(claim)]
    public = [claim.id for claim in usable if claim.origin == "public"]
    dialogue = [claim.id for claim in usable if claim.origin == "dialogue"][:2]
    assert len(public) > 40 and len(dialogue) == 2
    assert any(bank.claims[claim_id].no_demo for claim_id in public)
    spec = RoundSpec(id="public-mix", title="Public and dialogue", claims=(*public, *dialogue),
                     kinds=("verdict", "multiple_choice", "numeric", "spot_the_error"), count=MAX_ROUND_ITEMS)
    items = round_items(bank, spec)
    assert {item.claim_id for item in items} == set(spec.claims)
    return spec, items


def _definitions(article) -> dict[str, object]:
    return {dt.text_content(): dt.getnext() for dt in article.iter("dt")}


def test_the_html_handout_says_where_learners_say_it(bank, mixed_round):
    spec, items = mixed_round
    page = handout_html(bank, spec, items, Live())
    tree = lxml.html.fromstring(page)
    assert not NONE.search(tree.text_content())
    articles = tree.find_class("claim")
    claims = list(dict.fromkeys(item.claim_id for item in items))
    assert len(articles) == len(claims)
    for article, claim_id in zip(articles, claims):
        claim, rows = bank.claims[claim_id], _definitions(article)
        if claim.origin == "public":
            assert "Said in the dialogue" not in rows
            links = rows["Where learners say it"].findall(".//a")
            assert [a.get("href") for a in links] == [a.text_content() for a in links] == addresses(claim)
        else:
            assert "Where learners say it" not in rows
            assert claim.quote.split()[0] in rows["Said in the dialogue"].text_content()
        if claim.no_demo:
            assert rows["Why there is no live demo"].text_content().strip() == claim.no_demo
            assert "The evidence" in rows and "What the model shows" not in rows
        else:
            assert "What the model shows" in rows


def test_an_address_is_escaped_in_the_html_handout(bank):
    claim = next(claim for claim in bank.claims.values() if claim.origin == "public")
    hostile = 'https://example.org/"><script>alert(1)</script><a href="https://evil.example'
    article = lxml.html.fromstring(claim_html(claim.model_copy(update={"seen_at": [hostile]})))
    assert not article.findall(".//script")
    assert [a.get("href") for a in article.findall(".//dd//a")] == [hostile]


def test_the_pdf_handout_prints_the_addresses_and_no_none(bank, mixed_round):
    spec, items = mixed_round
    # A PDF of every item takes most of a minute: one verdict question for ten claims shows the same.
    public = [claim_id for claim_id in spec.claims if bank.claims[claim_id].origin == "public"]
    chosen = sorted(public, key=lambda claim_id: (not bank.claims[claim_id].no_demo,
                                                  -len(bank.claims[claim_id].seen_at)))[:8]
    dialogue = [claim_id for claim_id in spec.claims if bank.claims[claim_id].origin == "dialogue"]
    items = [item for item in items if item.kind == "verdict" and item.claim_id in {*chosen, *dialogue}]
    assert len(items) == 10 and any(len(bank.claims[claim_id].seen_at) > 2 for claim_id in chosen)
    reader = pypdf.PdfReader(io.BytesIO(handout_pdf(bank, spec, items, Live())))
    text = "".join(page.extract_text() for page in reader.pages)
    assert not NONE.search(text)
    squashed = re.sub(r"\s+", "", text)
    public = {item.claim_id for item in items if bank.claims[item.claim_id].origin == "public"}
    assert squashed.count("Wherelearnerssayit") == len(public)
    for claim_id in public:
        for address in addresses(bank.claims[claim_id]):
            assert re.sub(r"\s+", "", address) in squashed, address


def test_lms_and_anki_exports_of_public_claims_say_no_none(bank, mixed_round):
    spec, items = mixed_round
    assert not NONE.search(gift(bank, spec, items))
    assert not NONE.search(moodle_xml(bank, spec, items))
    assert anki_deck(bank, spec, items)
    for item in items:
        assert not any(NONE.search(field) for field in note_fields(bank, item)), item.id
        assert f"source::{bank.claims[item.claim_id].origin}" in note_tags(bank, item)
