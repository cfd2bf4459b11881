"""`doctor` names the real problem of a cache folder it cannot write, and the fix that helps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kqv_demo import doctor, packages
from kqv_demo.settings import PROJECT_ROOT

WRITABLE_FIX = "KQV_CACHE_DIR=/a/writable/folder"


@pytest.fixture
def unwritable_cache(tmp_path: Path, monkeypatch) -> Path:
    """A cache folder that cannot be created: its parent is a file (this holds for root too)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    root = blocker / "kqv-tutor"
    monkeypatch.setenv("KQV_CACHE_DIR", str(root))
    return root


def test_an_unwritable_cache_folder_is_named_with_the_fix(unwritable_cache: Path):
    check = doctor.check_cache_state(packages.smollm2_gguf())
    assert not check.ok and "not writable" in check.detail and str(unwritable_cache) in check.detail
    assert check.fix and WRITABLE_FIX in check.fix and str(unwritable_cache) in check.fix and "pip" not in check.fix


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the test above covers root")
def test_a_read_only_cache_folder_is_named_with_the_fix(tmp_path: Path, monkeypatch):
    root = tmp_path / "read-only"
    root.mkdir(mode=0o555)
    monkeypatch.setenv("KQV_CACHE_DIR", str(root))
    check = doctor.check_cache_state(packages.smollm2_gguf())
    assert not check.ok and "not writable" in check.detail and WRITABLE_FIX in check.fix


def test_an_empty_writable_cache_folder_is_fine(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("KQV_CACHE_DIR", str(tmp_path / "fresh"))
    check = doctor.check_cache_state(packages.smollm2_gguf())
    assert check.ok and "built at first load" in check.detail


def test_a_load_refused_a_write_in_the_cache_gets_the_cache_fix(unwritable_cache: Path):
    refused = PermissionError(13, "Permission denied", str(unwritable_cache / "smollm2" / ".convert.lock"))
    assert WRITABLE_FIX in doctor._fix_for(refused)
    assert doctor._fix_for(ImportError("no module named torch")) == doctor.SETUP_FIX
    elsewhere = PermissionError(13, "Permission denied", "/usr/lib/somewhere")
    assert doctor._fix_for(elsewhere) == doctor.SETUP_FIX


def test_doctor_run_with_an_unwritable_cache_prints_the_cache_fix_not_a_reinstall(unwritable_cache: Path):
    result = subprocess.run([sys.executable, "-m", "kqv_demo", "doctor"], capture_output=True, text=True, check=False,
                            timeout=300, cwd=PROJECT_ROOT, env={**os.environ, "KQV_CACHE_DIR": str(unwritable_cache)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    cache_line = next(index for index, line in enumerate(lines) if "converted cache:" in line)
    assert "FAIL" in lines[cache_line] and "not writable" in lines[cache_line]
    assert lines[cache_line + 1].strip().startswith(f"fix: export {WRITABLE_FIX}")
    assert "pip install" not in result.stdout
