"""Reading a message: its sentences and their form, what it is about, and its stance on each candidate.

    reading = read(message, retriever, stance_model, statements, limits)
    reading.candidates[0].statement.text, reading.candidates[0].asserts   # "Keys are stored ...", 0.97

The work per message is bounded whatever its length: at most MAX_PARTS sentences are embedded and each
candidate statement is read against one sentence (the one closest to it), so a 1,000-character message of
short sentences costs little more than a question.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kqv_demo.explainer.message import normalise_terms
from kqv_demo.explainer.pairs import LABELS
from kqv_demo.runtime import EMBED_MAX_TOKENS
from kqv_demo.explainer.retrieval import Retriever
from kqv_demo.explainer.stance import Cues, read_cues
from kqv_demo.explainer.statements import Statement

MAX_PARTS = 8  # parts of one message that are read: the whole message, then its first sentences
SENTENCE_TOKEN_BUDGET = EMBED_MAX_TOKENS  # the sentences' tokens together, at most (as one more whole message)
MIN_SENTENCE_WORDS = 3
_SENTENCE_END = re.compile(r"(?<=[.?!;])\s+|\n+")

SUBJECT_WORDS = re.compile(
    r"\b(?:attention|attend\w*|transformers?|quer(?:y|ies)|keys?|values?|softmax|kl|divergence|dot[- ]?products?|"
    r"heads?|layers?|tokens?|tokeni[sz]\w*|embeddings?|bert|gpt\w*|llms?|language models?|decoders?|encoders?|"
    r"logits?|sampl\w+|temperature|residual|mask\w*|nosql|mongo\w*|databases?|neurons?|rlhf|fine-?tun\w*|"
    r"pre-?train\w*|training|context|prompts?|chat\s?bots?|chatgpt|smollm\w*|minilm|vectors?|weights?|"
    r"probabilit\w+|distributions?|kv|cache|hidden states?|representations?|concepts?|mlp|feed-?forward|biase?s?|"
    r"rope|positional|positions?|heatmaps?|scaling|hyperparameters?|d_k|qkv|kqv|learn\w*|generat\w+|models?|"
    r"matri(?:x|ces)|projections?|self-attention|multi-?head|seq2seq|rnns?|lstms?)\b",
    re.IGNORECASE,
)
GENERIC_SUBJECT_WORDS = re.compile(
    r"(?:attention|attend\w*|keys?|values?|heads?|layers?|tokens?|temperature|context|weights?|training|prompts?|"
    r"vectors?|probabilit\w+|distributions?|mask\w*|cache|concepts?|biase?s?|representations?|scaling|learn\w*|"
    r"sampl\w+|generat\w+|databases?|models?|positions?|matri(?:x|ces)|projections?)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Part:
    text: str  # the whole message (part 0) or one of its sentences
    cues: Cues


@dataclass(frozen=True)
class Candidate:
    statement: Statement
    similarity: float  # how close the message (its closest part) is to the statement's phrasings
    part: int  # the part the stance was read on
    closest_line: str  # the statement's own wording or phrasing (asserting it) closest to that part
    closest_kind: str  # the kind of the statement's row closest to that part ("states", "denies", "asks"...)
    kind_margin: float  # how much closer that row is than the closest asserting one (0 when it asserts)
    asserts: float  # P(the part asserts the statement, or takes it for granted)
    denies: float
    asks: float
    unrelated: float

    @property
    def asserting_similarity(self) -> float:
        """How close the message is to the statement's wordings that assert it (not those denying it)."""
        return self.similarity - self.kind_margin


@dataclass(frozen=True)
class Reading:
    text: str
    cues: Cues
    parts: list[Part]
    on_subject: bool
    best_similarity: float  # of any statement or topic page
    candidates: list[Candidate]  # by similarity, best first; opposites of the closest ones included
    topic_pages: list[tuple[str, float]]  # (topic id, similarity), best first

    def of_kind(self, kind: str) -> list[Candidate]:
        return [candidate for candidate in self.candidates if candidate.statement.kind == kind]

    def part_text(self, candidate: Candidate) -> str:
        return self.parts[candidate.part].text


def sentences(text: str) -> list[str]:
    """Every sentence of a message long enough to say something, in order, each once."""
    pieces = [piece.strip() for piece in _SENTENCE_END.split(text) if piece and piece.strip()]
    return list(dict.fromkeys(piece for piece in pieces if len(piece.split()) >= MIN_SENTENCE_WORDS))


def split_parts(text: str, token_counts: Callable[[list[str]], list[int]] | None = None) -> list[str]:
    """The whole message, then its first sentences (when it has more than one): at most MAX_PARTS parts,
    and sentences adding up to at most SENTENCE_TOKEN_BUDGET tokens when `token_counts` is given, so the
    sentences of any message cost at most one more full-length embedding."""
    found = sentences(text)
    if len(found) < 2:
        return [text]
    found = found[: MAX_PARTS - 1]
    if token_counts is not None:
        kept, total = [], 0
        for sentence, count in zip(found, token_counts(found)):
            total += count
            if total > SENTENCE_TOKEN_BUDGET:
                break
            kept.append(sentence)
        found = kept
    return [text, *found]


ASSERTING_KINDS = ("statement", "states", "presupposes")


def _closest_lines(retriever: Retriever, similarity_of_part: np.ndarray,
                   statement: Statement) -> tuple[str, str, float]:
    """The statement's asserting wording closest to a part of the message; the kind of its row closest to
    that part overall; and by how much that row is closer than the asserting one."""
    asserting = retriever.closest_row(similarity_of_part, statement.id, ASSERTING_KINDS)
    overall = retriever.closest_row(similarity_of_part, statement.id)
    if asserting is None or overall is None:
        return statement.text, "statement", 0.0
    (line, line_similarity), (row, row_similarity) = asserting, overall
    return line.text, row.kind, row_similarity - line_similarity


def on_subject(text: str) -> bool:
    """One specific word ("softmax", "BERT") or two different generic ones ("keys" and "values")."""
    found = [word.lower() for word in SUBJECT_WORDS.findall(text)]
    specific = [word for word in found if not GENERIC_SUBJECT_WORDS.fullmatch(word)]
    return bool(specific) or len(set(found)) >= 2


def judged_text(part: Part) -> str:
    """What the stance model reads of a part: a claim put in someone's mouth ("my professor said X. Please
    confirm, yes?") is judged on X alone. Who said it does not decide what is true, and the request for
    agreement around it made the model read a statement as a question (P(asserts) 0.54 against 1.00 for
    X alone). A question stays whole: "my teacher asked whether X" does not assert X."""
    cues = part.cues
    if cues.authority and not (cues.wh_question or cues.yes_no or cues.core.rstrip().endswith("?")):
        return cues.core
    return part.text


def read(text: str, retriever: Retriever, stance_model, statements: dict[str, Statement], embed,
         candidates: int, boost: dict[str, float] | None = None,
         token_counts: Callable[[list[str]], list[int]] | None = None,
         worth_reading: Callable[[float, bool], bool] = lambda best_similarity, on_subject: True) -> Reading:
    """Everything the rules need to decide on `text`: `candidates` closest statements (plus the opposite of
    each misconception among them), each with its stance read on the part of the message closest to it.
    `boost` adds to the similarity of some targets (a follow-up stays on the conversation's subject). The
    stance model runs only when `worth_reading(best similarity, on subject)`: a message that will be
    declined as off topic costs no stance pass (its candidates' stance probabilities are then 0)."""
    parts = [Part(part, read_cues(part)) for part in split_parts(text, token_counts)]
    row_similarity = retriever.row_similarity(embed([normalise_terms(part.text) for part in parts]))
    scores = retriever.scores(row_similarity)  # [parts, targets]
    if boost:
        scores = scores + np.array([boost.get(target, 0.0) for target in retriever.targets], dtype=np.float32)
    best_per_target = scores.max(axis=0)
    order = np.argsort(-best_per_target, kind="stable")
    chosen: list[str] = []  # the `candidates` closest statements, each followed by its opposite
    closest = 0
    for index in order:
        target = retriever.targets[index]
        if closest == candidates:
            break
        if target in statements and target not in chosen:
            closest += 1
            chosen.append(target)
            opposite = statements[target].opposite
            if opposite and opposite not in chosen:
                chosen.append(opposite)
    position = {target: index for index, target in enumerate(retriever.targets)}
    closest_part = {target: int(scores[:, position[target]].argmax()) for target in chosen}
    best, subject = float(best_per_target.max()), on_subject(text)
    pairs = [(judged_text(parts[closest_part[target]]), statements[target].text) for target in chosen]
    probabilities = (stance_model.probabilities(pairs) if worth_reading(best, subject)
                     else np.zeros((len(pairs), len(LABELS)), dtype=np.float32))
    found = [
        Candidate(statements[target], float(best_per_target[position[target]]), closest_part[target],
                  *_closest_lines(retriever, row_similarity[closest_part[target]], statements[target]),
                  *map(float, probabilities[row]))
        for row, target in enumerate(chosen)
    ]
    found.sort(key=lambda candidate: -candidate.similarity)
    pages = [(target.removeprefix("topic:"), float(best_per_target[index]))
             for index, target in enumerate(retriever.targets) if target.startswith("topic:")]
    pages.sort(key=lambda page: -page[1])
    return Reading(text, parts[0].cues, parts, subject, best, found, pages)
