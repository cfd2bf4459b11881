"""Hostile YAML in every place the app reads YAML: one clear `file:line: (yaml): message`, no traceback.

The claim bank (a copy of content/), the round files, an upload on the Instructor page and `validate` all
get the same payloads: the review's alias bomb (8 levels of 9 aliases, 430 bytes: once 19 s and 2.8 GB),
nesting deeper than the recursion limit, more values than any quiz file needs, integers longer than
Python converts, values PyYAML's constructors choke on, and bytes that are not text. Each payload is
appended to a real, valid file, so the error's line is known exactly, and the other files are still served.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kqv_demo.content import loader, yamlfile
from kqv_demo.content.loader import CONTENT_DIR, Bank, load_bank
from kqv_demo.content.yamlfile import INTERNAL, MAX_DEPTH, MAX_NODES, parse_yaml
from kqv_demo.quiz.round_files import load_round_files, parse_round_upload
from kqv_demo.settings import PROJECT_ROOT


def alias_bomb(levels: int) -> str:
    lines = ["bomb0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"bomb{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]" for level in range(1, levels)]
    return "\n".join(lines) + "\n"


def nested_mappings(levels: int) -> str:
    """Indented one space per level (YAML allows it), so that 300 levels fit in a 64 KB upload."""
    return "".join(" " * level + f"d{level}:\n" for level in range(levels)) + " " * levels + "end: 1\n"


# name: (text appended to a valid file, text of the line the error must name, words of the message)
PAYLOADS = {
    "the review's alias bomb": (alias_bomb(8), "bomb0:", "anchor &a0: anchors and aliases are not allowed"),
    "a small alias bomb": (alias_bomb(4), "bomb0:", "anchor &a0: anchors and aliases are not allowed"),
    "an alias": ("again: *somewhere\n", "again:", "alias *somewhere: anchors and aliases are not allowed"),
    "deep brackets": ("deep: " + "[" * 5000 + "]" * 5000 + "\n", "deep:", f"nested more than {MAX_DEPTH} levels"),
    "deep indentation": (nested_mappings(300), f"d{MAX_DEPTH}:", f"nested more than {MAX_DEPTH} levels"),
    "too many values": ("many: [" + "0, " * MAX_NODES + "0]\n", "many:", f"more than {MAX_NODES:,} values"),
    "a 5,000-digit integer": ("big: " + "9" * 5000 + "\n", "big:", "a number 5,000 characters long"),
    "a 5,000-digit hex integer": ("big: 0x" + "f" * 5000 + "\n", "big:", "a number 5,002 characters long"),
    "an impossible date": ("when: 2024-13-45\n", "when:", "cannot read '2024-13-45' as timestamp"),
    "a boolean that is not": ("flag: !!bool maybe\n", "flag:", "cannot read 'maybe' as bool"),
    "a Python tag": ("run: !!python/object/apply:os.system ['true']\n", "run:", "could not determine a constructor"),
    "a NUL character": ("nul: a\x00b\n", "nul:", "the character U+0000 is not allowed"),
}


def line_of(text: str, start: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if line.lstrip().startswith(start))


@pytest.fixture(scope="module")
def bank() -> Bank:
    return load_bank(dialogue=False)


@pytest.fixture
def content(tmp_path: Path) -> Path:
    """A copy of the real content folder, to break."""
    root = tmp_path / "content"
    for folder in ("claims", "rounds"):
        shutil.copytree(CONTENT_DIR / folder, root / folder)
    shutil.copy(CONTENT_DIR / "topics.yaml", root / "topics.yaml")
    return root


def append(file: Path, payload: str) -> str:
    text = file.read_text(encoding="utf-8") + payload
    file.write_text(text, encoding="utf-8")
    return text


def assert_one_error_at(errors, file_name: str, line: int, words: str) -> None:
    assert len(errors) == 1, [str(error) for error in errors]
    error = errors[0]
    assert (error.file.name, error.line, error.field) == (file_name, line, "(yaml)"), str(error)
    assert words in error.message and "Traceback" not in error.message
    assert str(error).endswith(f"{file_name}:{line}: (yaml): {error.message}")


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_a_hostile_claim_file_is_reported_and_the_rest_of_the_bank_is_served(content: Path, payload: str):
    appended, line_start, words = PAYLOADS[payload]
    everything = load_bank(content, dialogue=False)
    victim = content / "claims" / "kl-divergence-compares-queries-and-keys.yaml"
    text = append(victim, appended)
    bank = load_bank(content, dialogue=False)
    assert_one_error_at(bank.errors, victim.name, line_of(text, line_start), words)
    assert set(bank.claims) == set(everything.claims) - {"kl-divergence-compares-queries-and-keys"}
    assert bank.topics.keys() == everything.topics.keys()


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_a_hostile_round_file_is_reported_and_the_other_round_files_are_served(bank: Bank, content: Path,
                                                                               payload: str):
    appended, line_start, words = PAYLOADS[payload]
    victim = content / "rounds" / "workshop-45.yaml"
    text = append(victim, appended)
    rounds = load_round_files(bank, content / "rounds")
    assert_one_error_at(rounds.errors, victim.name, line_of(text, line_start), words)
    assert list(rounds.specs) == ["kl-only"]


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_a_hostile_upload_is_reported(bank: Bank, payload: str):
    appended, line_start, words = PAYLOADS[payload]
    text = (CONTENT_DIR / "rounds" / "workshop-45.yaml").read_text(encoding="utf-8") + appended
    spec, errors = parse_round_upload(bank, "upload.yaml", text.encode())
    assert spec is None
    assert_one_error_at(errors, "upload.yaml", line_of(text, line_start), words)


def test_the_shipped_content_needs_no_anchors_or_aliases():
    """Refusing them costs the bank nothing: no content file uses one (a refused file would be an error)."""
    for file in sorted(CONTENT_DIR.rglob("*.y*ml")):
        document, errors = parse_yaml(file, file.read_text(encoding="utf-8"))
        assert document is not None and not [e for e in errors if e.field == "(yaml)"], [str(e) for e in errors]


def test_limits_are_inclusive_of_what_they_allow():
    """Exactly MAX_DEPTH levels and MAX_NODES values are fine; one more is refused."""
    deepest = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert parse_yaml(Path("ok.yaml"), f"a: {deepest}\n")[1] == []
    assert "nested more than" in parse_yaml(Path("no.yaml"), f"a: [{deepest}]\n")[1][0].message
    values = MAX_NODES - 3  # the document, the key and the list are values too
    assert parse_yaml(Path("ok.yaml"), "a: [" + "0, " * (values - 1) + "0]\n")[1] == []
    assert "more than" in parse_yaml(Path("no.yaml"), "a: [" + "0, " * values + "0]\n")[1][0].message
    assert parse_yaml(Path("ok.yaml"), "a: " + "9" * 100 + "\n")[0].data == {"a": int("9" * 100)}


def test_invalid_utf8_names_its_line(bank: Bank, content: Path):
    victim = content / "claims" / "kl-divergence-compares-queries-and-keys.yaml"
    data = victim.read_bytes()
    victim.write_bytes(data + b"bad: caf\xe9\n")
    errors = load_bank(content, dialogue=False).errors
    assert [(e.file.name, e.line, e.field) for e in errors] == [(victim.name, data.count(b"\n") + 1, "(file)")]
    assert "not UTF-8" in errors[0].message
    _spec, errors = parse_round_upload(bank, "latin1.yaml", b"id: x\ntitle: caf\xe9\n")
    assert [(e.line, e.field) for e in errors] == [(2, "(file)")]


def test_a_bug_met_on_one_file_costs_that_file_only(content: Path, monkeypatch, caplog):
    """Whatever goes wrong inside a check, the bank is served and the message names the file, plainly."""
    checks = loader._cross_checks

    def broken_for_one_claim(claim, *args, **kwargs):
        if claim.id == "kl-divergence-compares-queries-and-keys":
            raise RuntimeError("secret detail 1234")
        return checks(claim, *args, **kwargs)

    monkeypatch.setattr(loader, "_cross_checks", broken_for_one_claim)
    with caplog.at_level(logging.ERROR):
        bank = load_bank(content, dialogue=False)
    [error] = bank.errors
    assert (error.file.name, error.line, error.field) == ("kl-divergence-compares-queries-and-keys.yaml", 1, INTERNAL)
    assert "RuntimeError" in error.message and "secret detail" not in error.message and "Traceback" not in error.message
    assert len(bank.claims) == len(list((content / "claims").glob("*.yaml"))) - 1
    assert any(record.exc_info for record in caplog.records)  # the details are in the server log


def test_validate_reports_every_hostile_file_with_its_line(content: Path):
    claim = content / "claims" / "kl-divergence-compares-queries-and-keys.yaml"
    claim_text = append(claim, PAYLOADS["the review's alias bomb"][0])
    round_file = content / "rounds" / "workshop-45.yaml"
    round_text = append(round_file, PAYLOADS["a 5,000-digit integer"][0])
    topics = content / "topics.yaml"
    topics_text = append(topics, PAYLOADS["deep brackets"][0])
    result = subprocess.run([sys.executable, "-m", "kqv_demo", "validate", str(content)], capture_output=True,
                            text=True, check=False, timeout=300, cwd=PROJECT_ROOT, env={**os.environ})
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {claim}:{line_of(claim_text, 'bomb0:')}: (yaml): anchor &a0: "
        "anchors and aliases are not allowed in these files; write each value out in full",
        f"error: {topics}:{line_of(topics_text, 'deep:')}: (yaml): lists and mappings nested more than 50 levels deep",
        f"error: {round_file}:{line_of(round_text, 'big:')}: (yaml): a number 5,000 characters long; at most 100 here",
    ]
    assert (f"{len(list(claim.parent.glob('*.yaml'))) - 1} claims and 0 topic pages valid, 1 round files valid"
            in result.stdout)


def test_deep_brackets_are_refused_as_soon_as_they_are_too_deep(monkeypatch):
    """PyYAML's scanner works on every open bracket at every token: 5,000 of them cost half a second of
    CPU before the composer's depth check. The scanner stops at the first bracket past MAX_DEPTH."""
    opened = []
    fetch = yamlfile._BoundedLoader.fetch_flow_collection_start

    def counting(self, token_class):
        opened.append(self.flow_level)
        return fetch(self, token_class)

    monkeypatch.setattr(yamlfile._BoundedLoader, "fetch_flow_collection_start", counting)
    errors = parse_yaml(Path("deep.yaml"), "id: x\ntitle: " + "[" * 5000 + "]" * 5000 + "\n")[1]
    assert [(e.line, e.message) for e in errors] == [
        (2, f"lists and mappings nested more than {MAX_DEPTH} levels deep")]
    assert len(opened) == MAX_DEPTH + 1


def test_brackets_in_quotes_and_comments_are_not_nesting():
    text = 'a: "' + "[" * 60 + '"\nb: 1  # ' + "{" * 60 + "\nc: '" + "[" * 60 + "'\n"
    document, errors = parse_yaml(Path("ok.yaml"), text)
    assert errors == [] and document.data == {"a": "[" * 60, "b": 1, "c": "[" * 60}


def test_brackets_in_block_text_do_not_count_as_nesting(tmp_path):
    """Half-open intervals in prose ("[0, 1)") open no flow list: a block scalar full of them is valid."""
    notes = "\n".join(f"  interval {n} is [0, 1)" for n in range(MAX_DEPTH + 10))
    path = tmp_path / "notes.yaml"
    path.write_text(f"notes: |\n{notes}\n")
    document, errors = parse_yaml(path, path.read_text())
    assert errors == [] and document.data["notes"].count("[0, 1)") == MAX_DEPTH + 10
