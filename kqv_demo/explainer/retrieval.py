"""Retrieval: which vetted statements and topic pages a message is about (MiniLM sentence similarity).

Every statement's own text and every phrasing that leads to it is a row; so is every topic page's title and
neutral question. A statement (or page) scores the best similarity of any of its rows. Similarity says what
a message is ABOUT, not what it says about it: that is the stance model's job (stance_model.py).
The vectors are cached on disk (index.py), keyed by the rows and the MiniLM weights (`retrieval_key`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from kqv_demo.content.loader import Bank
from kqv_demo.explainer.index import embed_texts, load_cached, minilm_identity, save
from kqv_demo.explainer.message import normalise_terms
from kqv_demo.explainer.statements import PHRASING_KINDS, Statement
from kqv_demo.runtime import Runtime

RETRIEVAL_FORMAT = 1


@dataclass(frozen=True)
class Row:
    target: str  # a statement id, or "topic:<id>"
    kind: str  # "statement" | states | presupposes | asks | denies | "title"
    text: str


@dataclass(frozen=True)
class Retriever:
    rows: list[Row]
    vectors: np.ndarray  # [rows, 384], L2-normalised
    targets: list[str]  # every statement id and topic page ("topic:<id>"), in a fixed order
    row_target: np.ndarray  # [rows] index into targets
    row_kind: np.ndarray  # [rows] each row's kind (str)

    def row_similarity(self, message_vectors: np.ndarray) -> np.ndarray:
        """[len(message_vectors), len(rows)]: each part of a message (the whole, its sentences) against
        every row."""
        return message_vectors @ self.vectors.T

    def scores(self, row_similarity: np.ndarray) -> np.ndarray:
        """[parts, len(targets)]: the best similarity of any row of each target, from `row_similarity`."""
        best = np.full((row_similarity.shape[0], len(self.targets)), -1.0, dtype=np.float32)
        np.maximum.at(best.T, self.row_target, row_similarity.T)
        return best

    def closest_row(self, similarity_of_part: np.ndarray, target: str,
                    kinds: tuple[str, ...] | None = None) -> tuple[Row, float] | None:
        """The row of `target` (among those of `kinds`, if given) that one part of a message is closest to,
        and its similarity."""
        rows_of_target = self.row_target == self.targets.index(target)
        chosen = np.flatnonzero(rows_of_target & np.isin(self.row_kind, kinds) if kinds else rows_of_target)
        if chosen.size == 0:
            return None
        best = int(chosen[similarity_of_part[chosen].argmax()])
        return self.rows[best], float(similarity_of_part[best])


def retrieval_rows(statements: list[Statement], bank: Bank) -> list[Row]:
    rows = []
    for statement in statements:
        rows.append(Row(statement.id, "statement", statement.text))
        rows += [Row(statement.id, kind, line) for kind in PHRASING_KINDS for line in statement.lines(kind)]
    for topic in bank.topics.values():
        rows.append(Row(f"topic:{topic.id}", "title", topic.title))
        rows += [Row(f"topic:{topic.id}", "asks", line) for line in topic.asks]
    return rows


def retrieval_key(rows: list[Row]) -> str:
    """Names the cached vectors of `rows`: another row, wording or MiniLM gives another key."""
    digest = hashlib.sha256(f"retrieval={RETRIEVAL_FORMAT};minilm={minilm_identity()}".encode())
    for row in rows:
        digest.update(json.dumps([row.target, row.kind, row.text]).encode())
    return "r" + digest.hexdigest()[:19]


def build_retriever(statements: list[Statement], bank: Bank, runtime: Runtime) -> Retriever:
    """The retriever: vectors from the cache when it matches the rows, else embedded now and cached."""
    rows = retrieval_rows(statements, bank)
    key = retrieval_key(rows)
    vectors = load_cached(key, rows)
    if vectors is None:
        vectors = embed_texts(runtime, [normalise_terms(row.text) for row in rows])
        save(key, vectors)
    targets = list(dict.fromkeys(row.target for row in rows))
    position = {target: index for index, target in enumerate(targets)}
    return Retriever(rows, vectors, targets, np.array([position[row.target] for row in rows]),
                     np.array([row.kind for row in rows]))
