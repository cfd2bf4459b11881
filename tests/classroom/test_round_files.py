"""Round files: the shipped examples load; broken files are reported as file:line: field: message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kqv_demo.classroom import create_class, format_code
from kqv_demo.content.loader import load_bank
from kqv_demo.content.yamlfile import MAX_ERRORS, problem_count
from kqv_demo.errors import UserInputError
from kqv_demo.classroom.resolve import resolve_round
from kqv_demo.quiz.resolve import round_items
from kqv_demo.quiz.round_files import (
    MAX_ROUND_FILE_BYTES, SUGGESTED, load_round_file, load_round_files, parse_round_upload, rounds_dir,
)
from kqv_demo.quiz.rounds import RoundSpec
from kqv_demo.settings import PROJECT_ROOT

GOOD = """\
id: my-round
title: My round
claims:
  - kl-divergence-compares-queries-and-keys
  - softmax-turns-scores-into-attention-distribution
kinds: [multiple_choice, verdict]
count: 4
order: bank
"""


def write(tmp_path: Path, text: str, name: str = "round.yaml") -> Path:
    file = tmp_path / name
    file.write_text(text, encoding="utf-8")
    return file


def messages(errors) -> list[str]:
    return [f"{error.line}: {error.field}: {error.message}" for error in errors]


def test_the_shipped_round_files_are_valid(bank):
    files = load_round_files(bank, rounds_dir())
    assert files.errors == []
    assert {"workshop-45", "kl-only"} <= set(files.specs)
    workshop = files.specs["workshop-45"]
    assert (workshop.time_limit_minutes, workshop.feedback, workshop.order) == (45, "end", "bank")
    items = round_items(bank, workshop)
    assert len(items) == workshop.count and all(bank.claims[i.claim_id].core for i in items)
    kl = round_items(bank, files.specs["kl-only"])
    assert kl and all("kl-divergence" in bank.claims[i.claim_id].topics for i in kl)


def test_bank_order_keeps_claims_in_bank_order_and_kinds_in_the_listed_order(bank, tmp_path):
    spec, errors = load_round_file(bank, write(tmp_path, GOOD))
    assert errors == []
    assert [item.id for item in round_items(bank, spec)] == [
        "kl-divergence-compares-queries-and-keys:multiple_choice", "kl-divergence-compares-queries-and-keys:verdict",
        "softmax-turns-scores-into-attention-distribution:multiple_choice",
        "softmax-turns-scores-into-attention-distribution:verdict",
    ]
    shuffled = [i.id for i in round_items(bank, spec.model_copy(update={"order": "shuffled", "seed": 5}))]
    assert sorted(shuffled) == sorted(i.id for i in round_items(bank, spec))


@pytest.mark.parametrize("text,expected", [
    ("id: x\ntitle: [broken\n", "2: (yaml): the [...] list that starts on this line is not closed properly"),
    (GOOD.replace("  - softmax-turns-scores-into-attention-distribution", "  - softmax-turns-scores"),
     "5: claims[1]: no claim 'softmax-turns-scores' in the bank"),
    (GOOD.replace("kinds: [multiple_choice, verdict]", "kinds: [multiple_choice, essay]"),
     "6: kinds[1]: Input should be"),
    (GOOD + "topics: [kl]\n", "9: topics[0]: 'kl' is not in the topic vocabulary"),
    (GOOD + "time_limit_minutes: 500\n", "9: time_limit_minutes: Input should be less than or equal to 180"),
    (GOOD + "feedback: later\n", "9: feedback: Input should be 'immediate' or 'end'"),
    (GOOD + "colour: red\n", "9: colour: unknown field (typo?)"),
    (GOOD.replace("id: my-round", "id: core-10"), "1: id: 'core-10' is a built-in round"),
    (GOOD.replace("title: My round\n", ""), "1: title: required field is missing"),
    (GOOD + "count: 5\n", "9: count: key appears twice"),
    (GOOD.replace("kinds: [multiple_choice, verdict]", "kinds: [numeric]").replace(
        "  - softmax-turns-scores-into-attention-distribution\n", ""), "1: (document): no question matches"),
    ("- a list\n", "1: (document): expected a mapping of fields"),
])
def test_broken_round_files_name_the_line_and_field(bank, tmp_path, text: str, expected: str):
    spec, errors = load_round_file(bank, write(tmp_path, text))
    assert spec is None
    assert any(message.startswith(expected) for message in messages(errors)), messages(errors)
    assert all(str(error).startswith(f"{tmp_path / 'round.yaml'}:") for error in errors)


def test_every_unknown_claim_is_reported_even_when_other_fields_are_wrong(bank, tmp_path):
    text = GOOD.replace("count: 4", "count: 0").replace("kl-divergence-compares-queries-and-keys", "nope")
    _, errors = load_round_file(bank, write(tmp_path, text))
    assert {e.field for e in errors} == {"count", "claims[0]"}


def test_uploads_are_size_limited_and_validated(bank):
    spec, errors = parse_round_upload(bank, "mine.yaml", GOOD.encode())
    assert spec is not None and spec.id == "my-round" and errors == []
    big = (GOOD + "# " + "x" * MAX_ROUND_FILE_BYTES + "\n").encode()
    spec, errors = parse_round_upload(bank, "big.yaml", big)
    assert spec is None and "larger than 64 KB" in str(errors[0]) and str(errors[0]).startswith("big.yaml:1: (file)")
    spec, errors = parse_round_upload(bank, "latin1.yaml", "title: caf\xe9".encode("latin-1"))
    assert spec is None and "not UTF-8" in errors[0].message


def test_a_folder_with_two_rounds_of_the_same_id_reports_the_second(bank, tmp_path):
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD, "b.yaml")
    files = load_round_files(bank, tmp_path)
    assert list(files.specs) == ["my-round"] and "duplicate id" in str(files.errors[0])


def test_resolve_round_accepts_built_ins_paths_file_ids_and_class_codes(bank, store, tmp_path):
    assert resolve_round(bank, "core-10").id == "core-10"
    assert resolve_round(bank, str(write(tmp_path, GOOD))).id == "my-round"
    assert resolve_round(bank, "workshop-45").time_limit_minutes == 45
    class_round = RoundSpec(id="class", title="Class", claims=("worked-kl-example-gives-0-135",), count=3,
                            kinds=("verdict", "numeric", "multiple_choice"))
    code, _key = create_class(store, bank, class_round)
    drawn = [item.id for item in round_items(bank, class_round)]
    for typed in (code, code.lower(), format_code(code)):
        resolved = resolve_round(bank, typed, store)
        assert [item.id for item in round_items(bank, resolved)] == drawn
    for unknown, message in (("nope", "no round called 'nope'"), ("missing.yaml", "no round file"),
                             ("ZZZZZZZZZ", "no class round with that code")):
        with pytest.raises(UserInputError, match=message):
            resolve_round(bank, unknown, store)
    broken = write(tmp_path, "id: x\n", "broken.yaml")
    with pytest.raises(UserInputError, match="broken.yaml:1: title: required field is missing"):
        resolve_round(bank, str(broken), store)


def test_specs_stored_before_the_new_options_still_load():
    old = {"id": "core-10", "title": "Core 10", "description": "", "topics": [], "verdicts": [],
           "kinds": ["verdict", "multiple_choice", "numeric", "spot_the_error"], "claims": [], "core_only": True,
           "count": 10, "seed": 0}
    spec = RoundSpec.model_validate(old)
    assert (spec.order, spec.feedback, spec.time_limit_minutes, spec.item_ids) == ("shuffled", "immediate", None, ())


def run_validate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kqv_demo", "validate", *args], capture_output=True, text=True,
                          check=False, timeout=300, cwd=PROJECT_ROOT, env={**os.environ})


def test_validate_checks_the_round_files_and_a_single_round_file(tmp_path):
    whole = run_validate()
    assert whole.returncode == 0, whole.stdout
    assert "round files valid; no errors." in whole.stdout
    one = run_validate("content/rounds/workshop-45.yaml")
    assert one.returncode == 0 and "round file valid: 'workshop-45', 20 questions" in one.stdout
    broken = write(tmp_path, GOOD.replace("kl-divergence-compares-queries-and-keys", "kl-divergence-compares"))
    bad = run_validate(str(broken))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert f"{broken}:4: claims[0]: no claim 'kl-divergence-compares' in the bank" in bad.stdout


def near_miss_upload(count: int) -> bytes:
    """The review's CPU attack, smaller: many item ids that each almost match a real one."""
    ids = "".join(f"  - kl-divergence-compares-queries-and-keyz{number}:verdict\n" for number in range(count))
    return f"id: many\ntitle: Many\nitem_ids:\n{ids}".encode()


def test_many_unknown_ids_are_counted_not_each_listed_and_only_the_first_get_suggestions(bank):
    spec, errors = parse_round_upload(bank, "many.yaml", near_miss_upload(300))
    assert spec is None and len(errors) == MAX_ERRORS + 1
    assert [e.line for e in errors[:MAX_ERRORS]] == list(range(4, 4 + MAX_ERRORS))
    suggested = [e for e in errors if "did you mean 'kl-divergence-compares-queries-and-keys:verdict'?" in e.message]
    assert suggested == errors[:SUGGESTED]
    more = errors[-1]
    assert (more.line, more.field) == (4 + MAX_ERRORS, "(more)")
    assert more.message == f"and {300 - MAX_ERRORS} more problems in this file, not listed; fix these first"
    assert problem_count(errors) == 300


def test_round_files_in_the_folder_are_capped_too(bank, tmp_path):
    write(tmp_path, near_miss_upload(50).decode(), "many.yaml")
    _spec, errors = load_round_file(bank, tmp_path / "many.yaml")
    assert len(errors) == MAX_ERRORS + 1 and "and 30 more problems" in errors[-1].message


def test_a_rerun_with_the_same_upload_reuses_the_parse(bank):
    """Streamlit reruns the page with the same upload on every click: the parse is kept, per bank."""
    first, first_errors = parse_round_upload(bank, "mine.yaml", GOOD.encode())
    again, again_errors = parse_round_upload(bank, "mine.yaml", GOOD.encode())
    assert first is again and first_errors == again_errors == []
    other_bank = load_bank(dialogue=False)
    for_other_bank, _ = parse_round_upload(other_bank, "mine.yaml", GOOD.encode())
    assert for_other_bank == first and for_other_bank is not first
    other_bytes, _ = parse_round_upload(bank, "mine.yaml", GOOD.replace("count: 4", "count: 3").encode())
    assert other_bytes.count == 3
    _, errors = parse_round_upload(bank, "bad.yaml", near_miss_upload(30))
    errors.clear()  # a caller changing its list does not change what the next rerun gets
    assert len(parse_round_upload(bank, "bad.yaml", near_miss_upload(30))[1]) == MAX_ERRORS + 1
