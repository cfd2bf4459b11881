"""A safetensors copy of the GGUF model, so that later starts skip dequantization.

Loading the Q4_1 GGUF dequantizes every tensor (about 13 s here). We do it once
and keep the fp32 result (plus tokenizer and config) in a cache folder with a
manifest: the source's identity and each file's size and sha256. A cache whose
manifest, sizes or hashes disagree is rebuilt, so a truncated or damaged file
costs one rebuild, never a crash.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kqv_demo.packages import PackagedFile, file_sha256

CACHE_FORMAT = 1
MANIFEST = "kqv-manifest.json"
ProgressFn = Callable[[str, float], None]


@dataclass(frozen=True)
class CacheStatus:
    valid: bool
    reason: str


def smollm2_cache_path(root: Path) -> Path:
    return root / f"smollm2-135m-instruct-fp32-v{CACHE_FORMAT}"


def check_cache(folder: Path, source: PackagedFile, *, verify_hashes: bool = True) -> CacheStatus:
    """Is `folder` a complete conversion of `source`? Says why not."""
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        return CacheStatus(False, "no converted copy yet")
    try:
        manifest = json.loads(manifest_path.read_text())
        files = dict(manifest["files"])
        if manifest["format"] != CACHE_FORMAT or manifest["source"] != source.identity:
            return CacheStatus(False, "made from another version of the model file")
    except (ValueError, KeyError, TypeError):
        return CacheStatus(False, "the manifest is unreadable")
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            return CacheStatus(False, f"{name} is missing")
        if path.stat().st_size != expected["size"]:
            return CacheStatus(False, f"{name} has the wrong size (truncated?)")
        if verify_hashes and file_sha256(path) != expected["sha256"]:
            return CacheStatus(False, f"{name} is damaged (hash mismatch)")
    return CacheStatus(True, "valid")


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One process converts at a time; the others wait and then reuse its result."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_smollm2_cache(
    source: PackagedFile,
    root: Path,
    convert: Callable[[PackagedFile, Path, ProgressFn], None],
    progress: ProgressFn,
) -> Path:
    """Return a valid cache folder for `source`, converting it first when needed."""
    target = smollm2_cache_path(root)
    if check_cache(target, source).valid:
        return target
    with _exclusive(root / ".convert.lock"):
        status = check_cache(target, source)
        if status.valid:
            return target
        progress(f"Converting SmolLM2 for fast starts ({status.reason}); about 15 s, once", 0.05)
        build = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            convert(source, build, progress)
            _write_manifest(build, source)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(build, target)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return target


def _write_manifest(folder: Path, source: PackagedFile) -> None:
    files = {
        path.name: {"size": path.stat().st_size, "sha256": file_sha256(path)}
        for path in sorted(folder.iterdir())
        if path.is_file()
    }
    manifest = {"format": CACHE_FORMAT, "source": source.identity, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
