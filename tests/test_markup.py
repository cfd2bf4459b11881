"""The one escaping helper: text shown literally in every Markdown sink, as Streamlit renders it."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kqv_demo.markup import literal, literal_block, literal_code, plain, visible
from tests.hostile import HOSTILE, HOSTILE_LINES, PIECES, as_read, hostile_findings, streamlit_findings


@pytest.mark.parametrize("name", list(PIECES))
def test_each_payload_renders_as_a_link_image_or_markup_unless_escaped(name: str):
    """The payloads do what they should when unescaped (so the check below means something).
    `javascript:` links are refused by the renderers themselves; the browser test checks them."""
    if name not in ("rtl", "javascript"):
        assert hostile_findings(PIECES[name]), f"{name} is not Markdown by itself"
    assert hostile_findings(literal(PIECES[name])) == []


def test_bare_urls_and_icons_need_more_than_backslashes():
    """Streamlit links `https://`, `www.` and e-mail addresses, and draws `:material/...:` icons, in
    the text *after* escapes are resolved: backslashes alone leave them live (the bug in review)."""
    backslashed = re.sub(r"([\\`*_{}\[\]()#+\-.!|~>$<&:=\"'])", r"\\\1", HOSTILE)
    kinds = {finding.kind for finding in hostile_findings(backslashed)}
    assert {"link", "icon"} <= kinds
    assert hostile_findings(literal(HOSTILE)) == []


def test_the_text_reads_as_typed_without_control_or_reordering_characters():
    assert as_read(literal(HOSTILE)) == HOSTILE.replace("\u202e", "")
    assert as_read(literal("·Paris")) == "·Paris"  # token displays still read well
    assert as_read(literal("a -> b, x >= 1, c -- d")) == "a -> b, x >= 1, c -- d"  # not arrows or signs
    assert literal("line one\nline two\x00\x1b") == "line one line two"


def test_cut_text_gets_an_ellipsis():
    assert as_read(literal("abcdefghij", max_chars=5)) == "abcd…"


def test_blocks_keep_their_lines_and_lose_their_markup():
    assert streamlit_findings(HOSTILE_LINES)  # headings, quotes, lists and a code fence, unescaped
    shown = literal_block(HOSTILE_LINES)
    assert hostile_findings(shown) == []
    assert shown.count("  \n") == HOSTILE_LINES.count("\n")


@pytest.mark.parametrize("text", ["store['www.evil.example']", "a`b``c", "`", "", ":material/home: and $x$"])
def test_code_spans_hold_any_text(text: str):
    shown = literal_code(text)
    assert hostile_findings(shown) == []
    fence = re.match(r"`+", shown).group(0)
    inner = shown[len(fence):-len(fence)]
    assert shown.endswith(fence) and "`" * len(fence) not in inner
    assert inner.strip(" ").replace("\u2060", "") == text.strip(" ") or not text.strip()


def test_visible_keeps_line_breaks_only_when_asked_and_drops_what_xml_cannot_hold():
    text = "a\x00b\r\nc\td\ud800e\ufffef\U0001fffeg\u202eh"
    assert visible(text) == "ab c defgh"
    assert visible(text, keep_line_breaks=True) == "ab\nc defgh"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*PIECES.values(), " ", "\n", "x", ".", ":", "/", "w", "@", "`", "\\", "$"]),
                max_size=12).map("".join))
def test_any_mix_of_payload_fragments_stays_literal(text: str):
    assert hostile_findings(literal(text)) == []
    assert hostile_findings(literal_block(text)) == []


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .:/w@`\\$*_[]()<>-=~#!|{}&'\"\n\x00\u202e")), max_size=40))
def test_plain_reads_literal_back_as_the_visible_text(text: str):
    """For media that do not read Markdown (a PDF caption made from a demo's headline)."""
    assert plain(literal(text)) == visible(text)


def test_a_shortened_title_ends_at_a_word_and_never_inside_math():
    from kqv_demo.markup import shortened

    text = "Attention compares each query with every key by $q_i \\cdot k_j / \\sqrt{d_k}$ and then normalises them"
    cut = shortened(text, 60)
    assert len(cut) <= 60 and cut.endswith("…") and cut.count("$") % 2 == 0
    assert text.startswith(cut[:-1]) and text[len(cut) - 1] in " $"  # a whole word (or before the math) was kept
    assert shortened("Short enough.", 60) == "Short enough."
