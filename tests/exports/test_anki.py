"""The .apkg is a zip holding an Anki collection with one note per item and stable guids."""

from __future__ import annotations

import io
import json
import sqlite3
import tempfile
import zipfile
from pathlib import Path

import genanki

from kqv_demo.exports.anki import DECK_ID, MODEL_ID, anki_deck, media_name


def read_notes(apkg: bytes) -> tuple[list[tuple[str, str, str]], dict]:
    with zipfile.ZipFile(io.BytesIO(apkg)) as archive:
        assert "collection.anki2" in archive.namelist()
        data = archive.read("collection.anki2")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "collection.anki2"
        path.write_bytes(data)
        with sqlite3.connect(path) as db:
            notes = db.execute("SELECT guid, flds, tags FROM notes ORDER BY id").fetchall()
            models, decks = db.execute("SELECT models, decks FROM col").fetchone()
    return notes, {"models": json.loads(models), "decks": json.loads(decks)}


def test_one_note_per_item_with_guids_stable_across_exports(bank, everything):
    spec, items = everything
    first, collection = read_notes(anki_deck(bank, spec, items))
    second, _ = read_notes(anki_deck(bank, spec, list(reversed(items))))
    assert len(first) == len(items)
    assert {guid for guid, _, _ in first} == {genanki.guid_for(item.id) for item in items}
    assert {guid for guid, _, _ in first} == {guid for guid, _, _ in second}
    assert str(MODEL_ID) in collection["models"] and str(DECK_ID) in collection["decks"]
    fields = [name["name"] for name in collection["models"][str(MODEL_ID)]["flds"]]
    assert fields == ["Question", "Answer", "Explanation", "Claim", "References"]


def test_note_fields_hold_the_question_answer_and_sources(bank, small_round):
    spec, items = small_round
    notes, _ = read_notes(anki_deck(bank, spec, items))
    by_guid = {guid: (fields.split("\x1f"), tags.split()) for guid, fields, tags in notes}
    for item in items:
        fields, tags = by_guid[genanki.guid_for(item.id)]
        question, answer, explanation, _claim, references = fields
        assert item.prompt.split()[0] in question and answer and explanation
        assert bank.claims[item.claim_id].references[0].title.split()[0] in references
        assert f"kind::{item.kind}" in tags and f"verdict::{bank.claims[item.claim_id].verdict}" in tags
        assert "<script" not in question


def test_each_card_back_shows_its_claims_live_figure_packed_as_media(bank, small_round, small_live):
    spec, items = small_round
    apkg = anki_deck(bank, spec, items, small_live)
    with zipfile.ZipFile(io.BytesIO(apkg)) as archive:
        media = json.loads(archive.read("media"))  # {"0": "kqv-....png", ...}
        files = {name: archive.read(number) for number, name in media.items()}
    assert files and all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in files.values())
    notes, _ = read_notes(apkg)
    by_guid = {guid: fields.split("\x1f") for guid, fields, _ in notes}
    for item in items:
        figure = small_live.figure_for(item)
        question, _answer, explanation, _claim, _references = by_guid[genanki.guid_for(item.id)]
        if figure is None or figure.png is None:
            continue
        name = media_name(figure)
        assert f'src="{name}"' in explanation and files[name] == figure.png
        assert name not in question, "the figure is on the back of the card only"
    assert set(files) == {media_name(f) for f in small_live.figures.values() if f.png is not None
                          and any(small_live.figure_for(item) is f for item in items)}


def test_media_names_say_which_demo_and_differ_between_figures(small_live):
    figures = [f for f in small_live.figures.values() if f.png is not None]
    names = [media_name(f) for f in figures]
    assert all(name.startswith(f"kqv-{f.demo_id}-") and name.endswith(".png") for name, f in zip(names, figures))
    assert len(set(names)) == len({f.png for f in figures}), "one name per distinct image"


def test_a_round_with_markup_and_control_characters_shows_them_as_text(bank, small_round):
    """L6: the deck description (HTML in Anki) shows the round's title as text, and the cards show a
    question and a claim with markup as text, without control characters."""
    import lxml.html

    from tests.exports.hostile_round import CLAIM, PROMPT, TITLE, hostile_round, readable, squash

    hostile_bank, spec, items = hostile_round(bank, small_round)
    notes, collection = read_notes(anki_deck(hostile_bank, spec, items))
    description = collection["decks"][str(DECK_ID)]["desc"]
    fields = dict(zip(["question", "answer", "explanation", "claim", "references"],
                      next(flds for guid, flds, _ in notes if guid == genanki.guid_for(items[0].id)).split("\x1f")))
    for html_text, expected in ((description, TITLE), (fields["question"], PROMPT), (fields["claim"], CLAIM)):
        assert not any(ord(char) < 32 or 0x7F <= ord(char) <= 0x9F for char in html_text), html_text
        fragment = lxml.html.fragment_fromstring(html_text, create_parent="div")
        assert fragment.find(".//b") is None and fragment.find(".//img") is None, html_text
        assert readable(expected) in squash(fragment.text_content())
