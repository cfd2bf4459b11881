"""`python -m kqv_demo export`: every format writes a file; bad input is a message with exit code 2."""

from __future__ import annotations

import io
import zipfile

import pypdf
import pytest
from lxml import etree

from tests.exports.conftest import SMALL_ROUND
from tests.test_cli import run_cli

CHECKS = {
    "moodle": lambda data: len(etree.fromstring(data).findall("question")) == 9,  # category + 8
    "gift": lambda data: data.decode().count("\n::") == 8,
    "anki": lambda data: "collection.anki2" in zipfile.ZipFile(io.BytesIO(data)).namelist(),
    "html": lambda data: data.startswith(b"<!DOCTYPE html>") and data.count(b"<img ") >= 2,
    "pdf": lambda data: "Part 2 · Answer key" in "".join(
        p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages),
}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(CHECKS))
def test_export_writes_each_format(fmt, tmp_path):
    target = tmp_path / f"round.{fmt}"
    result = run_cli("export", "--round", SMALL_ROUND, "--format", fmt, "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert f"wrote {target}" in result.stdout and "8 questions" in result.stdout
    assert CHECKS[fmt](target.read_bytes())
    if fmt in ("html", "pdf"):
        assert "export: figure 1/" in result.stderr  # progress while figures render


@pytest.mark.parametrize("args,message", [
    (["--round", "no-such-round", "--format", "gift"], "There is no round called 'no-such-round'"),
    (["--round", SMALL_ROUND, "--format", "gift", "-o", "/nonexistent-folder/x.gift"], "does not exist"),
    (["--round", SMALL_ROUND, "--format", "gift", "-o", "/"], "is a folder"),
])
def test_export_bad_input_is_a_message(args, message, tmp_path):
    if "-o" not in args:
        args = [*args, "-o", str(tmp_path / "x")]
    result = run_cli("export", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_export_rejects_an_unknown_format(tmp_path):
    result = run_cli("export", "--round", SMALL_ROUND, "--format", "docx", "-o", str(tmp_path / "x"))
    assert result.returncode == 2 and "invalid choice: 'docx'" in result.stderr
