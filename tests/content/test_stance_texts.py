"""content/stance_training.yaml: real text by others for the stance model, checked like every content file
(`file:line: field: message`, a bad entry left out, never a traceback)."""

from __future__ import annotations

from pathlib import Path

from kqv_demo.content.loader import CONTENT_DIR, load_bank
from kqv_demo.content.stance_texts import FILE_NAME, load_stance_texts


def test_the_shipped_file_loads_with_addresses_and_both_kinds():
    bank = load_bank(dialogue=False)
    verdicts = {claim.id: claim.verdict for claim in bank.claims.values()}
    texts, errors = load_stance_texts(CONTENT_DIR / FILE_NAME, verdicts)
    assert errors == [] and texts
    # no misconception line ships yet (README, "Fifth later score"); the kind is checked below on its own
    assert {text.kind for text in texts} == {"true", "question"}
    assert all(text.source.startswith(("http://", "https://")) for text in texts)


def test_a_misconception_line_must_name_a_false_or_partly_claim_of_the_bank(tmp_path: Path):
    file = tmp_path / FILE_NAME
    file.write_text(
        "texts:\n"
        '  - {text: "Keys are stored in the model.", kind: misconception, claim: keys-stored, source: "https://e.org/a"}\n'
        '  - {text: "Keys are kept in a lookup table.", kind: misconception, source: "https://e.org/b"}\n'
        '  - {text: "Keys come from the tokens.", kind: true, claim: keys-stored, source: "https://e.org/c"}\n'
        '  - {text: "Attention uses KL divergence.", kind: misconception, claim: kl, source: "https://e.org/d"}\n'
        '  - {text: "Softmax weights sum to one per row.", kind: misconception, claim: rows, source: "https://e.org/e"}\n',
        encoding="utf-8")
    verdicts = {"keys-stored": "false", "rows": "true"}
    texts, errors = load_stance_texts(file, verdicts)
    assert [(text.kind, text.claim) for text in texts] == [("misconception", "keys-stored")]
    shown = [str(error) for error in errors]
    assert [error.line for error in errors] == [3, 4, 5, 6], shown
    assert "needs `claim:`" in shown[0] and "only a misconception line names a claim" in shown[1]
    assert "no claim has the id 'kl'" in shown[2] and "'rows' is true" in shown[3]
    alone, errors_alone = load_stance_texts(file)  # checked alone, the ids cannot be checked
    assert len(alone) == 3 and [error.line for error in errors_alone] == [3, 4]


def test_each_bad_entry_is_reported_at_its_line_and_left_out(tmp_path: Path):
    file = tmp_path / FILE_NAME
    file.write_text(
        "texts:\n"
        '  - {text: "Keys are computed from the tokens by W_K.", kind: true, source: "https://e.org/a"}\n'
        '  - {text: "Keys are computed from the tokens by W_K.", kind: true, source: "https://e.org/b"}\n'
        '  - {text: "Why divide by the square root of d_k?", kind: opinion, source: "https://e.org/c"}\n'
        '  - {text: "Softmax makes the weights sum to one.", kind: true, source: "not an address"}\n'
        '  - {text: "Values are mixed by the weights.", kind: true}\n',
        encoding="utf-8")
    texts, errors = load_stance_texts(file)
    assert [text.source for text in texts] == ["https://e.org/a"]
    shown = [str(error) for error in errors]
    assert [error.line for error in errors] == [3, 4, 5, 6], shown
    assert "listed twice" in shown[0] and "texts[2].kind" in shown[1] and "texts[3].source" in shown[2]
    assert "required field is missing" in shown[3]


def test_validate_reports_a_bad_file_in_the_content_folder(tmp_path: Path):
    """load_bank (and so `validate`) reads the file when it is in the content folder, or given alone."""
    file = tmp_path / FILE_NAME
    file.write_text("texts: 3\n", encoding="utf-8")
    bank = load_bank(file, dialogue=False)
    assert [str(error) for error in bank.errors] == [f"{file}:1: texts: expected a list under 'texts:'"]
    assert load_bank(dialogue=False).stance_texts, "the shipped file is loaded with the bank"
