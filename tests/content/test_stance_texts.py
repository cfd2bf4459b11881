"""content/stance_training.yaml: real text by others for the stance model, checked like every content file
(`file:line: field: message`, a bad entry left out, never a traceback)."""

from __future__ import annotations

from pathlib import Path

from kqv_demo.content.loader import CONTENT_DIR, load_bank
from kqv_demo.content.stance_texts import FILE_NAME, load_stance_texts


def test_the_shipped_file_loads_with_addresses_and_both_kinds():
    texts, errors = load_stance_texts(CONTENT_DIR / FILE_NAME)
    assert errors == [] and texts
    assert {text.kind for text in texts} == {"true", "question"}
    assert all(text.source.startswith(("http://", "https://")) for text in texts)


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
