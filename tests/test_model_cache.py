"""The safetensors cache: validated against its source, rebuilt when stale or damaged, never a crash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from kqv_demo import packages, settings
from kqv_demo.model_cache import MANIFEST, check_cache, smollm2_cache_path
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
