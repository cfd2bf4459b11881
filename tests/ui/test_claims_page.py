"""The Claims page: browse, filter, open one claim by link, and survive broken content files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kqv_demo.content.loader import CONTENT_DIR, load_bank
from tests.hostile import as_read

APP = str(Path(__file__).resolve().parents[2] / "app.py")
EXAMPLE_ID = "kl-divergence-compares-queries-and-keys"


def claims_page(**query: str) -> AppTest:
    test = AppTest.from_file(APP, default_timeout=60)
    test.run()
    test.switch_page("kqv_demo/ui/pages/claims.py")
    for key, value in query.items():
        test.query_params[key] = value
    test.run()
    assert not test.exception, test.exception
    return test


def test_lists_every_valid_claim():
    bank = load_bank()
    test = claims_page()
    assert f"of {len(bank.claims)} claims" in test.markdown[0].value
    cards = [e for e in test.expander if e.label.startswith(("**False**", "**Partly true**", "**True**"))]
    assert len(cards) == len(bank.claims)
    excerpts = [e for e in test.expander if e.label == "Read it in the dialogue"]
    assert len(excerpts) == (len(bank.claims) if bank.dialogue else 0)


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
