"""The safetensors cache: validated against its source, rebuilt when stale or damaged, never a crash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from kqv_demo import packages, settings
from kqv_demo.model_cache import (
    MANIFEST, WEIGHTS, CacheStatus, check_cache, ensure_smollm2_cache, smollm2_cache_path,
)
from kqv_demo.runtime import Runtime, load_smollm2


@pytest.fixture
def cache_copy(runtime: Runtime, tmp_path: Path) -> Path:
    """A private copy of the valid cache that the shared runtime loaded from."""
    source = smollm2_cache_path(settings.cache_dir())
    target = smollm2_cache_path(tmp_path)
    shutil.copytree(source, target)
    return target


def _first_logits(model) -> torch.Tensor:
    with torch.inference_mode():
        return model(torch.tensor([[504, 2644, 2643]])).logits[0, -1]


def test_the_shared_cache_is_valid_and_records_its_source(cache_copy: Path):
    gguf = packages.smollm2_gguf()
    assert check_cache(cache_copy, gguf).valid
    manifest = json.loads((cache_copy / MANIFEST).read_text())
    assert manifest["source"] == gguf.identity
    assert "model.safetensors" in manifest["files"]


def test_truncated_or_damaged_or_stale_caches_are_detected(cache_copy: Path):
    gguf = packages.smollm2_gguf()
    weights = cache_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert "damaged" in check_cache(cache_copy, gguf).reason
    with weights.open("r+b") as handle:
        handle.truncate(1000)
    assert "size" in check_cache(cache_copy, gguf).reason
    manifest = cache_copy / MANIFEST
    manifest.write_text("{not json")
    assert "unreadable" in check_cache(cache_copy, gguf).reason
    other = packages.PackagedFile(gguf.package, gguf.path, gguf.expected_size, "sha256=another-release")
    manifest.unlink()
    assert not check_cache(cache_copy, other).valid


@pytest.mark.slow
def test_a_truncated_cache_is_rebuilt_and_gives_the_same_model(runtime: Runtime, cache_copy: Path):
    weights = cache_copy / "model.safetensors"
    with weights.open("r+b") as handle:
        handle.truncate(weights.stat().st_size // 3)
    progress_messages: list[str] = []
    rebuilt = load_smollm2(cache_copy.parent, progress=lambda message, _f: progress_messages.append(message))
    assert any("Converting" in message and "size" in message for message in progress_messages)
    assert check_cache(cache_copy, packages.smollm2_gguf()).valid
    assert torch.equal(_first_logits(rebuilt.model), _first_logits(runtime.smollm2.model))


# --- malformed manifests: checked without the real model (a fake source and a one-file "conversion") ----


@pytest.fixture
def fake_source(tmp_path: Path) -> packages.PackagedFile:
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"not really a model")
    return packages.PackagedFile("fake-package", gguf, gguf.stat().st_size, "sha256=fake-release")


def fake_convert(calls: list[str]):
    def convert(source: packages.PackagedFile, folder: Path, progress) -> None:
        calls.append(folder.name)
        (folder / WEIGHTS).write_bytes(b"weights converted from " + source.path.read_bytes())
        (folder / "config.json").write_text("{}")
    return convert


def good_manifest(cache: Path) -> dict:
    return json.loads((cache / MANIFEST).read_text())


MALFORMED = {
    "not JSON": lambda m: "{not json",
    "not UTF-8": lambda m: b"\xff\xfe{}",
    "a list": lambda m: [m],
    "null": lambda m: None,
    "a file entry that is a number": lambda m: {**m, "files": {**m["files"], WEIGHTS: 5}},
    "a file entry without its hash": lambda m: {**m, "files": {**m["files"], WEIGHTS: {"size": 1}}},
    "a size that is text": lambda m: {**m, "files": {**m["files"], WEIGHTS: {**m["files"][WEIGHTS], "size": "7"}}},
    "a file outside the folder": lambda m: {**m, "files": {**m["files"], "/etc/hostname": {"size": 1, "sha256": "x"}}},
    "a parent folder": lambda m: {**m, "files": {**m["files"], "../x": {"size": 1, "sha256": "x"}}},
    "no weights listed": lambda m: {**m, "files": {"config.json": m["files"]["config.json"]}},
    "no files": lambda m: {**m, "files": {}},
    "a format that is text": lambda m: {**m, "format": "1"},
    "a 5,000-digit number": lambda m: '{"format": ' + "9" * 5000 + "}",
    "nested 100,000 deep": lambda m: "[" * 100_000 + "]" * 100_000,
}


def write_manifest(cache: Path, content) -> None:
    manifest = cache / MANIFEST
    if isinstance(content, bytes):
        manifest.write_bytes(content)
    else:
        manifest.write_text(content if isinstance(content, str) else json.dumps(content))


@pytest.mark.parametrize("damage", list(MALFORMED))
def test_a_malformed_manifest_is_rebuilt_never_a_crash(fake_source, tmp_path: Path, damage: str):
    calls: list[str] = []
    cache = ensure_smollm2_cache(fake_source, tmp_path / "cache", fake_convert(calls), lambda *_: None)
    assert check_cache(cache, fake_source).valid and len(calls) == 1
    write_manifest(cache, MALFORMED[damage](good_manifest(cache)))
    assert check_cache(cache, fake_source) == CacheStatus(False, "the manifest is unreadable")
    assert ensure_smollm2_cache(fake_source, tmp_path / "cache", fake_convert(calls), lambda *_: None) == cache
    assert len(calls) == 2 and check_cache(cache, fake_source).valid


def test_a_manifest_that_is_a_folder_or_a_cache_that_is_a_file_is_rebuilt(fake_source, tmp_path: Path):
    calls: list[str] = []
    root = tmp_path / "cache"
    cache = ensure_smollm2_cache(fake_source, root, fake_convert(calls), lambda *_: None)
    (cache / MANIFEST).unlink()
    (cache / MANIFEST).mkdir()
    assert check_cache(cache, fake_source) == CacheStatus(False, "the manifest is unreadable")
    ensure_smollm2_cache(fake_source, root, fake_convert(calls), lambda *_: None)
    shutil.rmtree(cache)
    cache.write_text("a file where the cache folder should be")
    ensure_smollm2_cache(fake_source, root, fake_convert(calls), lambda *_: None)
    assert len(calls) == 3 and check_cache(cache, fake_source).valid
