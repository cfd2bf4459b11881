"""Retrieval: which vetted statements and topic pages a message is about (MiniLM sentence similarity).

Every statement's own text and every phrasing that leads to it is a row; so is every topic page's title and
neutral question. A statement (or page) scores the best similarity of any of its rows. Similarity says what
a message is ABOUT, not what it says about it: that is the stance model's job (stance_model.py).
The vectors are cached like the old index (index.py), keyed by the rows and the MiniLM weights.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from kqv_demo.content.loader import Bank
from kqv_demo.explainer.index import _load_cached, _minilm_identity, _save, embed_texts
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

    def scores(self, message_vectors: np.ndarray) -> np.ndarray:
        """[len(message_vectors), len(targets)]: for each part of a message (the whole, its sentences),
        the best similarity of any row of each target."""
        similarity = message_vectors @ self.vectors.T  # [parts, rows]
        best = np.full((similarity.shape[0], len(self.targets)), -1.0, dtype=np.float32)
        np.maximum.at(best.T, self.row_target, similarity.T)
        return best


def retrieval_rows(statements: list[Statement], bank: Bank) -> list[Row]:
    rows = []
    for statement in statements:
        rows.append(Row(statement.id, "statement", statement.text))
        rows += [Row(statement.id, kind, line) for kind in PHRASING_KINDS for line in statement.lines(kind)]
    for topic in bank.topics.values():
        rows.append(Row(f"topic:{topic.id}", "title", topic.title))
        rows += [Row(f"topic:{topic.id}", "asks", line) for line in topic.asks]
    return rows


def build_retriever(statements: list[Statement], bank: Bank, runtime: Runtime) -> Retriever:
    rows = retrieval_rows(statements, bank)
    digest = hashlib.sha256(f"retrieval={RETRIEVAL_FORMAT};minilm={_minilm_identity()}".encode())
    for row in rows:
        digest.update(json.dumps([row.target, row.kind, row.text]).encode())
    key = "r" + digest.hexdigest()[:19]
    vectors = _load_cached(key, rows)
    if vectors is None:
        vectors = embed_texts(runtime, [normalise_terms(row.text) for row in rows])
        _save(key, vectors)
    targets = list(dict.fromkeys(row.target for row in rows))
    position = {target: index for index, target in enumerate(targets)}
    return Retriever(rows, vectors, targets, np.array([position[row.target] for row in rows]))
