"""Mutated YAML through the app's code paths: nothing escapes, every error has its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kqv_demo.content.yamlfile import ContentError
from kqv_demo.stress import yaml_fuzz

pytestmark = pytest.mark.slow  # each run reloads the whole claim bank per mutated claim file (~1 s)


@pytest.fixture(scope="module")
def result() -> dict:
    return yaml_fuzz.run(count=60, seed=0)


def test_sixty_mutations_give_errors_with_lines_and_no_crash(result: dict):
    assert result["files"] == 60
    assert (result["crashes"], result["tracebacks"], result["errors_without_line"]) == (0, 0, 0), result["problems"]
    assert (result["other_files_lost"], result["inconsistent"]) == (0, 0), result["problems"]


def test_the_mutations_really_break_files_of_every_kind_in_every_place(result: dict):
    assert set(result["by_mutation"]) == set(yaml_fuzz.MUTATIONS) and min(result["by_mutation"].values()) >= 1
    assert {target: counts["files"] for target, counts in result["by_target"].items()} == {
        "bank": 20, "round file": 20, "upload": 20}
    assert result["files_with_errors"] >= 40  # some mutations leave a valid file (a flipped comment)


def test_the_same_seed_gives_the_same_files():
    first, again, other_seed = (yaml_fuzz.run(count=9, seed=seed) for seed in (0, 0, 1))
    assert first["inputs_sha256"] == again["inputs_sha256"] != other_seed["inputs_sha256"]
    assert first["errors_reported"] == again["errors_reported"]


def test_the_fuzzer_counts_what_escapes_and_errors_without_a_line(monkeypatch):
    """The instrument itself: a crash or a line-less error in the code under test must show in the counts."""
    calls = []

    def crashing_then_lineless(bank, name: str, data: bytes):
        calls.append(name)
        if len(calls) == 1:
            raise RecursionError("planted")
        return None, [ContentError(Path(name), 0, "(yaml)", "planted, no line")]

    monkeypatch.setattr(yaml_fuzz, "parse_round_upload", crashing_then_lineless)
    result = yaml_fuzz.run(count=6, seed=0)
    assert (len(calls), result["crashes"], result["errors_without_line"]) == (2, 1, 1)
    assert result["problems"][0]["crash"] == "RecursionError: planted"
