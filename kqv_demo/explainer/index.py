"""The embedding cache shared by retrieval (retrieval.py): MiniLM vectors of the bank's phrasings, on disk.

The caller names the vectors by a key that covers everything they depend on (the phrasings themselves and
the MiniLM weights, see `minilm_identity`), so an edited bank or another model reads no stale cache.
Each key is stored as .npy plus a JSON manifest in the cache folder; writes are atomic, and a missing,
damaged or read-only cache costs a rebuild, never an error. (Before issue #13 this module also built the
old engine's phrasing index; the name stays for the cache files and their readers.)
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sized
from pathlib import Path

import numpy as np

from kqv_demo import packages, settings
from kqv_demo.runtime import Runtime

INDEX_FORMAT = 3  # written to each manifest: which layout wrote the files


def minilm_identity() -> str:
    """The MiniLM weights in use, for the cache key: other weights give other vectors."""
    try:
        return packages.minilm_weights().identity
    except Exception:  # an unusual install still gets a working (if less precisely keyed) cache
        return "unknown"


def index_folder() -> Path:
    return settings.cache_dir() / "explainer"


def _paths(key: str) -> tuple[Path, Path]:
    folder = index_folder()
    return folder / f"index-{key}.npy", folder / f"index-{key}.json"


def load_cached(key: str, rows: Sized) -> np.ndarray | None:
    """The cached vectors of `key`, or None when there are none or they do not fit `rows` (one per row)."""
    vectors_path, manifest_path = _paths(key)
    try:
        manifest = json.loads(manifest_path.read_text())
        vectors = np.load(vectors_path)
    except (OSError, ValueError):
        return None
    if manifest.get("rows") != len(rows) or vectors.shape != (len(rows), manifest.get("dim")):
        return None
    return vectors.astype(np.float32)


def write_atomically(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _save_array(name: str, vectors: np.ndarray) -> None:
    with open(name, "wb") as file:  # a file, not a name: np.save would append ".npy" to the name
        np.save(file, vectors)


def save(key: str, vectors: np.ndarray) -> None:
    vectors_path, manifest_path = _paths(key)
    try:
        write_atomically(vectors_path, lambda name: _save_array(name, vectors))
        manifest = {"format": INDEX_FORMAT, "rows": int(vectors.shape[0]), "dim": int(vectors.shape[1])}
        write_atomically(manifest_path, lambda name: Path(name).write_text(json.dumps(manifest)))
    except OSError:
        pass  # a read-only cache folder costs a rebuild next time, not an error


def embed_texts(runtime: Runtime, texts: list[str]) -> np.ndarray:
    """MiniLM vectors of `texts`: [len(texts), 384], float32 (`Runtime.embed` batches them by length)."""
    return runtime.embed(texts).astype(np.float32)
