"""The retrieval index: every vetted phrasing in the bank, embedded once with MiniLM.

One row per phrasing, with where it comes from: a claim's quote, restatement, quiz statement or
asked_as line; a topic page's title, asked_as line, summary sentence or true statement. The vectors are
cached as .npy plus a JSON manifest in the cache folder, keyed by the phrasings themselves and the MiniLM
weights, so an edited bank or another model rebuilds the cache; writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from kqv_demo import packages, settings
from kqv_demo.content.loader import Bank
from kqv_demo.explainer.message import normalise_terms
from kqv_demo.explainer.stance import has_negation, read_cues
from kqv_demo.runtime import Runtime

INDEX_FORMAT = 3
Source = Literal["claim", "topic"]


@dataclass(frozen=True)
class Phrasing:
    source: Source
    id: str  # claim id or topic id
    field: str  # quote | restatement | statement | asked_as | title | summary | true_statement
    text: str
    assertive: bool  # states something (or asks to confirm it), rather than asking openly


@dataclass(frozen=True)
class Index:
    phrasings: list[Phrasing]
    vectors: np.ndarray  # [rows, 384], L2-normalised
    key: str

    def similarities(self, query_vector: np.ndarray) -> np.ndarray:
        return self.vectors @ query_vector


def _is_assertive(text: str) -> bool:
    cues = read_cues(text)
    return cues.confirmation or not cues.question


_LATEX = re.compile(r"\$[^$]*\$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*])")


def _first_sentences(summary: str) -> list[str]:
    """The opening sentence of each summary paragraph, LaTeX and emphasis removed."""
    sentences = []
    for paragraph in summary.split("\n\n"):
        plain = _LATEX.sub(" ", paragraph).replace("**", "").replace("*", "")
        first = _SENTENCE_END.split(" ".join(plain.split()), maxsplit=1)[0].strip()
        # A sentence that denies a misconception ("Keys are not stored concept vectors") would match the
        # misconception itself better than the claim does; topic pages answer questions, claims judge.
        if len(first.split()) >= 4 and not has_negation(first):
            sentences.append(first)
    return sentences


def phrasings(bank: Bank) -> list[Phrasing]:
    rows: list[Phrasing] = []
    for claim in bank.claims.values():
        rows.append(Phrasing("claim", claim.id, "quote", claim.quote, True))
        rows.append(Phrasing("claim", claim.id, "restatement", " ".join(claim.refutation.claim.split()), True))
        rows.append(Phrasing("claim", claim.id, "statement", claim.quiz.verdict.statement, True))
        rows += [Phrasing("claim", claim.id, "asked_as", line, _is_assertive(line)) for line in claim.asked_as]
    for topic in bank.topics.values():
        rows.append(Phrasing("topic", topic.id, "title", topic.title, False))
        rows += [Phrasing("topic", topic.id, "asked_as", line, False) for line in topic.asked_as]
        rows += [Phrasing("topic", topic.id, "summary", line, False) for line in _first_sentences(topic.summary)]
        rows += [Phrasing("topic", topic.id, "true_statement", line, True) for line in topic.true_statements]
    return rows


def index_key(rows: list[Phrasing]) -> str:
    digest = hashlib.sha256()
    digest.update(f"format={INDEX_FORMAT};minilm={_minilm_identity()}".encode())
    for row in rows:
        digest.update(json.dumps(asdict(row), sort_keys=True).encode())
    return digest.hexdigest()[:20]


def _minilm_identity() -> str:
    try:
        return packages.minilm_weights().identity
    except Exception:  # an unusual install still gets a working (if less precisely keyed) cache
        return "unknown"


def index_folder() -> Path:
    return settings.cache_dir() / "explainer"


def _paths(key: str) -> tuple[Path, Path]:
    folder = index_folder()
    return folder / f"index-{key}.npy", folder / f"index-{key}.json"


def _load_cached(key: str, rows: list[Phrasing]) -> np.ndarray | None:
    vectors_path, manifest_path = _paths(key)
    try:
        manifest = json.loads(manifest_path.read_text())
        vectors = np.load(vectors_path)
    except (OSError, ValueError):
        return None
    if manifest.get("rows") != len(rows) or vectors.shape != (len(rows), manifest.get("dim")):
        return None
    return vectors.astype(np.float32)


def _write_atomically(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _save(key: str, vectors: np.ndarray) -> None:
    vectors_path, manifest_path = _paths(key)
    try:
        _write_atomically(vectors_path, lambda name: np.save(open(name, "wb"), vectors))
        manifest = {"format": INDEX_FORMAT, "rows": int(vectors.shape[0]), "dim": int(vectors.shape[1])}
        _write_atomically(manifest_path, lambda name: Path(name).write_text(json.dumps(manifest)))
    except OSError:
        pass  # a read-only cache folder costs a rebuild next time, not an error


def embed_texts(runtime: Runtime, texts: list[str], batch: int = 64) -> np.ndarray:
    parts = [runtime.embed(texts[start:start + batch]) for start in range(0, len(texts), batch)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 384), np.float32)


def build_index(bank: Bank, runtime: Runtime) -> Index:
    """The bank's index: from the cache when it matches, else embedded now (a few seconds) and cached."""
    rows = phrasings(bank)
    key = index_key(rows)
    vectors = _load_cached(key, rows)
    if vectors is None:
        vectors = embed_texts(runtime, [normalise_terms(row.text) for row in rows])
        _save(key, vectors)
    return Index(rows, vectors, key)
