"""Validation of the claim bank: every error class is caught, with the right file, line and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kqv_demo.content.loader import CONTENT_DIR, Dialogue, load_bank
from kqv_demo.content.yamlfile import MAX_ERRORS

# A frozen copy of one claim, so that editing the real bank never breaks these tests.
EXAMPLE = Path(__file__).parent / "fixtures" / "kl-divergence-compares-queries-and-keys.yaml"
QUOTE = "the query vector is compared to all key vectors using measures like KL divergence."
# A stand-in dialogue whose line 162 holds the quote, so these tests never need the real file.
DIALOGUE = Dialogue("\n" * 161 + f"To find the most relevant keys, {QUOTE}\n")


def line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "claims").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "claims" / EXAMPLE.name)
    shutil.copy(CONTENT_DIR / "topics.yaml", tmp_path / "topics.yaml")
    return tmp_path


def edit(root: Path, old: str, new: str, name: str = EXAMPLE.name) -> str:
    file = root / "claims" / name
    text = file.read_text()
    assert old in text, old
    text = text.replace(old, new, 1)
    file.write_text(text)
    return text


def only_error(root: Path, dialogue=DIALOGUE):
    bank = load_bank(root, dialogue=dialogue)
    assert len(bank.errors) == 1, [str(e) for e in bank.errors]
    return bank, bank.errors[0]


def test_the_fixture_itself_is_valid(root: Path):
    bank = load_bank(root, dialogue=DIALOGUE)
    assert bank.errors == [] and list(bank.claims) == ["kl-divergence-compares-queries-and-keys"]


# Real mistakes, each with the line a person has to fix; the parser notices most of them a line or more later.
SYNTAX_ERRORS = {
    "unclosed bracket": ("difficulty: 1\n", "difficulty: [1\n", "difficulty: [1",
                         "[...] list that starts on this line"),
    "unclosed quote": ('speaker: Assistant\n', 'speaker: "Assistant\n', 'speaker: "Assistant', "quoted text"),
    "unclosed brace": ("  params: {layer: 5, head: 0}", "  params: {layer: 5, head: 0", "params: {layer",
                       "{...} mapping"),
    "key without a colon": ("core: true\n", "core true\n", "core true", "no ':' after its key"),
    "indented too far": ("core: true\n", "   core: true\n", "   core: true", "check this line's indentation"),
    "list item indented too little": ("    title: Attention Is All You Need", " - title: Attention Is All You Need",
                                      " - title: Attention", "check this line's indentation"),
    "tab before a key": ("  id: attention-by-hand", "\tid: attention-by-hand", "\tid: attention",
                         "with spaces, not tabs"),
}


@pytest.mark.parametrize("mistake", list(SYNTAX_ERRORS))
def test_yaml_syntax_errors_name_the_line_to_fix(root: Path, mistake: str):
    old, new, wrong_line, message = SYNTAX_ERRORS[mistake]
    text = edit(root, old, new)
    bank, error = only_error(root)
    assert error.file.name == EXAMPLE.name and error.field == "(yaml)"
    assert (error.line, message in error.message) == (line_of(text, wrong_line), True), str(error)
    assert bank.claims == {}


def test_missing_field(root: Path):
    text = edit(root, "  tempting: >-\n", "  tempted: >-\n")
    _, error = only_error_or_two(root)
    assert error.field == "refutation.tempting" and error.message == "required field is missing"
    assert error.line == line_of(text, "refutation:")


def only_error_or_two(root: Path):
    """A renamed field gives 'missing' and 'unknown field'; return the 'missing' one."""
    bank = load_bank(root, dialogue=DIALOGUE)
    messages = {e.message: e for e in bank.errors}
    assert set(messages) == {"required field is missing", "unknown field (typo?)"}
    unknown = messages["unknown field (typo?)"]
    assert unknown.field == "refutation.tempted"
    return bank, messages["required field is missing"]


def test_topic_outside_the_vocabulary(root: Path):
    text = edit(root, "topics: [kl-divergence, dot-product]", "topics:\n  - kl-divergence\n  - attention-magic")
    _, error = only_error(root)
    assert error.field == "topics[1]" and "not in the topic vocabulary" in error.message
    assert error.line == line_of(text, "attention-magic")


def test_verdict_outside_the_three(root: Path):
    text = edit(root, 'verdict: "false"', "verdict: maybe")
    _, error = only_error(root)
    assert error.field == "verdict" and error.line == line_of(text, "verdict: maybe")


def test_duplicate_ids_across_files(root: Path):
    shutil.copy(root / "claims" / EXAMPLE.name, root / "claims" / "zz-copy.yaml")
    _, error = only_error(root)
    assert error.file.name == "zz-copy.yaml" and error.field == "id" and "duplicate id" in error.message
    assert error.line == line_of(EXAMPLE.read_text(), "id: ")


def test_quote_not_in_the_dialogue(root: Path):
    text = edit(root, "using measures like KL divergence.", "using measures like KL divergences.")
    _, error = only_error(root)
    assert error.field == "quote" and "not found in the dialogue" in error.message
    assert error.line == line_of(text, "quote:")


def test_line_far_from_the_quote(root: Path):
    text = edit(root, "line: 162", "line: 300")
    _, error = only_error(root)
    assert error.field == "line" and "starts at line 162" in error.message
    assert error.line == line_of(text, "line: 300")


def test_whitespace_differences_in_quotes_are_fine(root: Path):
    edit(root, 'quote: "the query vector is compared', 'quote: "the  query\\nvector is compared')
    assert load_bank(root, dialogue=DIALOGUE).errors == []


def test_absent_dialogue_is_a_warning_not_an_error(root: Path, monkeypatch):
    monkeypatch.setenv("KQV_DIALOGUE", str(root / "no-such-dialogue.txt"))
    bank = load_bank(root)
    assert bank.errors == [] and "dialogue file not found" in bank.warnings[0].message


def test_unknown_demo_id(root: Path):
    text = edit(root, "  id: attention-by-hand", "  id: attention-by-magic")
    _, error = only_error(root)
    assert error.field == "demo.id" and "no demo 'attention-by-magic'" in error.message
    assert error.line == line_of(text, "attention-by-magic")


def test_multiple_choice_needs_exactly_one_right_option(root: Path):
    text = edit(root, "      - text: \"The KL divergence between q_i and k_j; the lowest divergence wins\"\n",
                "      - text: \"The KL divergence between q_i and k_j; the lowest divergence wins\"\n"
                "        correct: true\n")
    _, error = only_error(root)
    assert error.field == "quiz.multiple_choice.options" and "exactly one correct option, has 2" in error.message
    assert error.line == line_of(text, "    options:")


def test_spot_the_error_spans_must_be_in_the_text(root: Path):
    edit(root, '"using measures like KL divergence"]', '"using cosine similarity"]')
    _, error = only_error(root)
    assert error.field == "quiz.spot_the_error" and "spans not found" in error.message


def test_partly_claims_must_say_which_part_is_right(root: Path):
    edit(root, 'verdict: "false"', 'verdict: "partly"')
    _, error = only_error(root)
    assert "right_part" in error.message


def test_a_key_written_twice(root: Path):
    text = edit(root, "difficulty: 1\n", "difficulty: 1\ndifficulty: 2\n")
    bank = load_bank(root, dialogue=DIALOGUE)
    assert [(e.field, e.line, e.message) for e in bank.errors] == [
        ("difficulty", line_of(text, "difficulty: 2"), "key appears twice")
    ]


def test_all_errors_are_reported_at_once_and_good_files_are_served(root: Path):
    shutil.copy(root / "claims" / EXAMPLE.name, root / "claims" / "broken.yaml")
    file = root / "claims" / "broken.yaml"
    file.write_text(
        file.read_text()
        .replace("id: kl-divergence-compares-queries-and-keys", "id: another-claim")
        .replace("difficulty: 1", "difficulty: 7")
        .replace("speaker: Assistant", "speaker: Claude")
    )
    bank = load_bank(root, dialogue=DIALOGUE)
    assert {e.field for e in bank.errors} == {"difficulty", "speaker"}
    assert all(e.file.name == "broken.yaml" for e in bank.errors)
    assert list(bank.claims) == ["kl-divergence-compares-queries-and-keys"]


def test_not_a_mapping_and_empty_files(root: Path):
    (root / "claims" / "list.yaml").write_text("- just\n- a list\n")
    (root / "claims" / "empty.yaml").write_text("")
    (root / "claims" / "binary.yaml").write_bytes(b"\xff\xfe\x00bad")
    bank = load_bank(root, dialogue=DIALOGUE)
    by_file = {e.file.name: e for e in bank.errors}
    assert set(by_file) == {"list.yaml", "empty.yaml", "binary.yaml"}
    assert "expected a mapping" in by_file["list.yaml"].message
    assert "is not UTF-8" in by_file["binary.yaml"].message


def test_missing_topic_pages_are_named(root: Path):
    topics = root / "topics.yaml"
    text = topics.read_text()
    start = text.index("  - id: feed-forward")  # the last page, in TOPICS order
    topics.write_text(text[:start])
    bank = load_bank(root, dialogue=DIALOGUE)
    assert [e.message for e in bank.errors] == ["no page for: feed-forward"]


def test_error_lines_read_like_compiler_output(root: Path):
    edit(root, "difficulty: 1", "difficulty: 9")
    _, error = only_error(root)
    assert str(error).endswith(f"{EXAMPLE.name}:{error.line}: difficulty: Input should be 1, 2 or 3")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_yaml_only_ever_gives_validation_errors(root: Path, data):
    original = EXAMPLE.read_text()
    position = data.draw(st.integers(0, len(original) - 1))
    length = data.draw(st.integers(0, 40))
    insert = data.draw(st.text(alphabet=st.sampled_from(list(":-[]{}\"'#&*!|>%@ \n\tabc01")), max_size=12))
    (root / "claims" / EXAMPLE.name).write_text(original[:position] + insert + original[position + length:])
    bank = load_bank(root, dialogue=DIALOGUE)  # must not raise, whatever the bytes
    for error in bank.errors:
        assert error.file.name == EXAMPLE.name and error.line >= 1 and error.message
    assert bool(bank.errors) != bool(bank.claims), "a file is either served or reported, never both or neither"


def test_dialogue_excerpt_marks_the_quoted_lines():
    dialogue = Dialogue("one\ntwo three\nfour\nfive six\nseven\n")
    assert dialogue.find("three four five") == 2
    assert dialogue.excerpt("three four five", before=1, after=1) == [
        (1, "one", False), (2, "two three", True), (3, "four", True), (4, "five six", True), (5, "seven", False),
    ]
    assert dialogue.excerpt("not there") == []


def test_a_claim_file_lists_at_most_twenty_errors_then_counts_the_rest(root: Path):
    edit(root, "  asks:\n", "  asks:\n" + '    - ""\n' * 45)
    errors = load_bank(root, dialogue=DIALOGUE).errors
    assert len(errors) == MAX_ERRORS + 1 and {e.field for e in errors[:MAX_ERRORS]} == {
        f"phrasings.asks[{index}]" for index in range(MAX_ERRORS)}
    assert (errors[-1].field, errors[-1].message) == (
        "(more)", f"and {45 - MAX_ERRORS} more problems in this file, not listed; fix these first")
