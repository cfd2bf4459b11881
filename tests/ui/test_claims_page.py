"""The Claims page: browse, filter, open one claim by link, and survive broken content files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kqv_demo.claim_source import addresses
from kqv_demo.content.loader import CONTENT_DIR, load_bank
from kqv_demo.markup import literal
from kqv_demo.ui.navigation import PAGES
from tests.hostile import as_read

APP = str(Path(__file__).resolve().parents[2] / "app.py")
EXAMPLE_ID = "kl-divergence-compares-queries-and-keys"


def claims_page(**query: str) -> AppTest:
    test = AppTest.from_file(APP, default_timeout=60)
    test.run()
    test.switch_page(PAGES["claims"].path)
    for key, value in query.items():
        test.query_params[key] = value
    test.run()
    assert not test.exception, test.exception
    assert not caught_failures(test)
    return test


def caught_failures(test: AppTest) -> list[str]:
    """Errors the page caught itself (shown as "it is our fault"), which `test.exception` does not list."""
    return [error.value for error in test.error if "it is our fault" in error.value]


def test_lists_every_valid_claim():
    bank = load_bank()
    test = claims_page()
    assert f"of {len(bank.claims)} claims" in test.markdown[0].value
    cards = [e for e in test.expander if e.label.startswith(("**False**", "**Partly true**", "**True**"))]
    assert len(cards) == len(bank.claims)
    excerpts = [e for e in test.expander if e.label == "Read it in the dialogue"]
    from_the_dialogue = sum(claim.origin == "dialogue" for claim in bank.claims.values())
    assert len(excerpts) == (from_the_dialogue if bank.dialogue else 0)


def test_filters_narrow_the_list():
    test = claims_page()
    test.text_input[0].set_value("KL divergence").run()
    shown = int(test.markdown[0].value.split("**")[1])
    assert 0 < shown < len(load_bank().claims) or len(load_bank().claims) == 1
    test.text_input[0].set_value("no claim says zebra").run()
    assert "No claim matches" in test.info[0].value


def test_a_claim_link_opens_that_claim_with_its_demo():
    test = claims_page(claim=EXAMPLE_ID)
    claim = load_bank().claims[EXAMPLE_ID]
    text = " ".join(m.value for m in test.markdown)
    assert claim.quote in text and claim.refutation.truth.split()[0] in text
    assert "Vaswani" in text
    links = {link.label: link for link in test.get("page_link")}
    assert any(label.startswith("Run the live demo") for label in links)
    assert "Link to this claim" in links


def test_the_quote_is_shown_in_its_place_in_the_dialogue():
    bank = load_bank()
    if bank.dialogue is None:
        pytest.skip("the source dialogue is not beside the project")
    test = claims_page(claim=EXAMPLE_ID)
    excerpt = next(e for e in test.expander if e.label == "Read it in the dialogue").code[0].value
    marked = [line for line in excerpt.splitlines() if line.startswith("▶")]
    assert marked and f"{bank.quote_lines[EXAMPLE_ID]:>3}" in marked[0]
    assert "KL divergence" in " ".join(marked)


def test_an_unknown_claim_link_says_so():
    test = claims_page(claim="no-such-claim")
    assert "no claim with the id 'no-such-claim'" in as_read(test.warning[0].value)


def test_broken_files_are_listed_and_the_rest_is_served(tmp_path: Path, monkeypatch):
    shutil.copytree(CONTENT_DIR, tmp_path / "content")
    (tmp_path / "content" / "claims" / "broken.yaml").write_text("id: broken\nverdict: [unclosed\n")
    monkeypatch.setenv("KQV_CONTENT_DIR", str(tmp_path / "content"))
    test = claims_page()
    errors = test.expander[0]
    assert "have errors and were left out" in errors.label
    assert "broken.yaml:" in errors.code[0].value
    assert f"of {len(load_bank().claims)} claims" in test.markdown[0].value


def _external_links(test: AppTest) -> list:
    return [link for link in test.get("page_link") if link.proto.external]


def _page_text(test: AppTest) -> str:
    return " ".join(element.value for element in [*test.markdown, *test.caption]) + " " + " ".join(
        expander.label for expander in test.expander)


def test_the_source_filter_counts_and_shows_public_claims_with_where_learners_say_it():
    bank = load_bank()
    public = [claim for claim in bank.claims.values() if claim.origin == "public"]
    assert public, "the bank has public claims"
    test = claims_page()
    source = test.radio(key="source")
    dialogue = len(bank.claims) - len(public)
    assert source.options == [f"All · {len(bank.claims)}", f"From the dialogue · {dialogue}",
                              f"Common misconceptions (public) · {len(public)}"]
    source.set_value("public").run()
    assert not test.exception and not caught_failures(test)
    assert test.markdown[0].value.startswith(f"**{len(public)}** of {len(bank.claims)} claims")
    cards = [e for e in test.expander if e.label.startswith(("**False**", "**Partly true**", "**True**"))]
    assert len(cards) == len(public)
    assert not [e for e in test.expander if e.label == "Read it in the dialogue"]
    text = _page_text(test)
    assert "None" not in text and "Said in the dialogue" not in text
    assert text.count("**Where learners say it:**") == len(public)
    targets = [link.proto.page for link in _external_links(test)]
    assert sorted(targets) == sorted(address for claim in public for address in addresses(claim))
    for claim in public:
        if claim.no_demo:
            assert claim.no_demo in text


def test_the_dialogue_filter_keeps_the_quotes_and_combines_with_the_other_filters():
    bank = load_bank()
    test = claims_page()
    test.radio(key="source").set_value("dialogue").run()
    dialogue = [claim for claim in bank.claims.values() if claim.origin == "dialogue"]
    assert test.markdown[0].value.startswith(f"**{len(dialogue)}** of")
    assert not _external_links(test) and "Where learners say it" not in _page_text(test)
    assert _page_text(test).count("**Said in the dialogue:**") == len(dialogue)
    test.text_input[0].set_value("KL divergence").run()
    shown = int(test.markdown[0].value.split("**")[1])
    assert 0 < shown < len(dialogue)
    assert test.radio(key="source").value == "dialogue", "the choice survives the other filters"
    test.radio(key="source").set_value("all").run()
    assert int(test.markdown[0].value.split("**")[1]) >= shown


def test_a_link_can_open_the_page_on_the_public_claims():
    bank = load_bank()
    test = claims_page(source="public")
    public = sum(claim.origin == "public" for claim in bank.claims.values())
    assert test.markdown[0].value.startswith(f"**{public}** of")
    assert claims_page(source="nonsense").markdown[0].value.startswith(f"**{len(bank.claims)}** of")


def test_a_public_claim_shows_where_learners_say_it_and_why_it_has_no_demo():
    bank = load_bank()
    claim = next(c for c in bank.claims.values() if c.origin == "public" and c.no_demo and len(c.seen_at) > 1)
    test = claims_page(claim=claim.id)
    text = _page_text(test)
    assert "**Where learners say it:**" in text and "None" not in text and "of the dialogue" not in text
    links = _external_links(test)
    assert [link.proto.page for link in links] == addresses(claim)
    assert [link.proto.label for link in links] == [literal(a, max_chars=100) for a in addresses(claim)]
    labels = [link.proto.label for link in test.get("page_link")]
    assert not any(label.startswith("Run the live demo") for label in labels)
    assert f"**No live demo.** {claim.no_demo}" in [caption.value for caption in test.caption]


def test_an_address_is_never_read_as_markdown(tmp_path: Path, monkeypatch):
    """A seen_at address full of Markdown links exactly to itself, and its label forms no other link."""
    shutil.copytree(CONTENT_DIR, tmp_path / "content")
    claim = next(c for c in load_bank().claims.values() if c.origin == "public")
    file = tmp_path / "content" / "claims" / f"{claim.id}.yaml"
    hostile = "https://example.org/a_b*c*/[prize](https://evil.example/x)"
    text = file.read_text()
    first = str(claim.seen_at[0])
    assert first in text
    file.write_text(text.replace(first, hostile, 1))
    monkeypatch.setenv("KQV_CONTENT_DIR", str(tmp_path / "content"))
    stored = addresses(load_bank(tmp_path / "content").claims[claim.id])[0]
    assert "[prize](https://evil.example/x)" in stored, "the schema keeps the address as written"
    test = claims_page(claim=claim.id)
    link = _external_links(test)[0]
    assert link.proto.page == stored
    assert "\\[prize\\]\\(https\\:\u2060//evil" in link.proto.label, "escaped, so it reads as the characters typed"
    assert "](" not in link.proto.label.replace("\\]\\(", ""), "no unescaped link syntax is left"
    assert not any("](https://evil.example" in element.value for element in test.markdown)
