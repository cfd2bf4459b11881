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
WEIGHTS = "model.safetensors"  # a manifest without it describes no usable conversion
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
    manifest = _read_manifest(manifest_path)
    if manifest is None:
        return CacheStatus(False, "the manifest is unreadable")
    if manifest["format"] != CACHE_FORMAT or manifest["source"] != source.identity:
        return CacheStatus(False, "made from another version of the model file")
    for name, expected in manifest["files"].items():
        path = folder / name
        try:
            if not path.is_file():
                return CacheStatus(False, f"{name} is missing")
            if path.stat().st_size != expected["size"]:
                return CacheStatus(False, f"{name} has the wrong size (truncated?)")
            if verify_hashes and file_sha256(path) != expected["sha256"]:
                return CacheStatus(False, f"{name} is damaged (hash mismatch)")
        except OSError as error:
            return CacheStatus(False, f"{name} cannot be read ({error.strerror or error})")
    return CacheStatus(True, "valid")


def _read_manifest(path: Path) -> dict | None:
    """The manifest, or None unless it has exactly the shape `_write_manifest` gives it.

    Anything else (not JSON, wrong types, names outside the folder, no weights) means: rebuild.
    """
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # unreadable, a folder, not UTF-8, not JSON, absurdly nested
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return None
    files = manifest["files"]
    well_formed = (
        type(manifest.get("format")) is int and isinstance(manifest.get("source"), str)
        and WEIGHTS in files
        and all(_plain_file_name(name) and isinstance(entry, dict) and type(entry.get("size")) is int
                and isinstance(entry.get("sha256"), str) for name, entry in files.items())
    )
    return manifest if well_formed else None


def _plain_file_name(name: str) -> bool:
    """A file directly in the cache folder: a manifest may not point anywhere else."""
    return name not in ("", ".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def unwritable_reason(root: Path) -> str | None:
    """Why a conversion cannot be written under `root` (created if missing), or None when it can."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


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
            _remove(target)
            os.replace(build, target)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return target


def _remove(target: Path) -> None:
    """Make way for a new conversion: the old folder, or whatever else took its name."""
    if target.is_symlink() or target.is_file():
        target.unlink()
    else:
        shutil.rmtree(target, ignore_errors=True)


def _write_manifest(folder: Path, source: PackagedFile) -> None:
    files = {
        path.name: {"size": path.stat().st_size, "sha256": file_sha256(path)}
        for path in sorted(folder.iterdir())
        if path.is_file()
    }
    manifest = {"format": CACHE_FORMAT, "source": source.identity, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
