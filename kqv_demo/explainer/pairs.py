"""Training pairs for the stance model, generated from the bank alone, deterministically.

Each pair is (message, statement, label): does the message assert the statement (or take it for
granted), deny it, only ask about its subject, or say nothing about it? The bank's phrasings give most
pairs; the hardest are a misconception against its own correction (the same words, the opposite claim),
which is exactly where similarity alone fails ("keys are stored in the model" / "keys are computed from
the context, not stored in the model").

    pairs = training_pairs(vetted_statements(bank))
    pairs[0]    # Pair("so attention uses KL divergence, right?", "Attention compares ... KL ...", ASSERTS)
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass

from kqv_demo.explainer.statements import Statement

ASSERTS, DENIES, ASKS, UNRELATED = 0, 1, 2, 3
LABELS = ("asserts", "denies", "asks", "unrelated")
PAIRS_FORMAT = 1
UNRELATED_PER_PHRASING = 1  # one other statement per phrasing: a nearby one on a shared topic, else any


@dataclass(frozen=True)
class Pair:
    message: str
    statement: str
    label: int


# How learners wrap a statement: asserting it, asking to confirm it, denying it, or asking whether it holds.
_ASSERTING = ("{x}.", "So {x}, right?", "My teacher said {x}.", "I read that {x}.", "{x}, correct?",
              "as far as i know {x}", "I'm pretty sure {x}.")
_DENYING = ("I don't think {x}.", "It's not true that {x}.", "People say {x}, but that's a myth.",
            "it is wrong to say {x}", "No, it's not the case that {x}.")
_ASKING = ("Is it true that {x}?", "Is it the case that {x}?", "I'm not sure whether {x}. Is it?")


def training_pairs(statements: list[Statement], seed: int = 0) -> list[Pair]:
    """Every pair the bank gives, in a fixed order; the same statements always give the same list."""
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for statement in statements:
        pairs += _phrasing_pairs(statement)
        pairs += _template_pairs(statement, rng)
        pairs += _unrelated_pairs(statement, statements, rng)
    return _without_duplicates(pairs)


def pairs_digest(pairs: list[Pair]) -> str:
    digest = hashlib.sha256(f"format={PAIRS_FORMAT}".encode())
    for pair in pairs:
        digest.update(json.dumps([pair.message, pair.statement, pair.label]).encode())
    return digest.hexdigest()


def _phrasing_pairs(statement: Statement) -> list[Pair]:
    pairs = [Pair(statement.text, statement.text, ASSERTS)]
    for kind, label in (("states", ASSERTS), ("presupposes", ASSERTS), ("asks", ASKS), ("denies", DENIES)):
        pairs += [Pair(line, statement.text, label) for line in statement.lines(kind)]
    return pairs


def _template_pairs(statement: Statement, rng: random.Random) -> list[Pair]:
    clause = _as_clause(statement.text)
    pairs = [Pair(rng.choice(_ASSERTING).format(x=clause), statement.text, ASSERTS),
             Pair(rng.choice(_DENYING).format(x=clause), statement.text, DENIES),
             Pair(rng.choice(_ASKING).format(x=clause), statement.text, ASKS)]
    # A casual, lower-case, unpunctuated copy of one phrasing: learners type like that.
    lines = statement.lines("states")
    if lines:
        pairs.append(Pair(_casual(rng.choice(lines)), statement.text, ASSERTS))
    return pairs


def _unrelated_pairs(statement: Statement, statements: list[Statement], rng: random.Random) -> list[Pair]:
    """The statement's phrasings against other statements: a message about one thing says nothing about
    another, even on the same topic (only a statement and its own opposite are related)."""
    related = {statement.id, statement.opposite}
    if statement.claim_id:
        related |= {other.id for other in statements if other.claim_id == statement.claim_id}
    others = [other for other in statements if other.id not in related]
    nearby = [other for other in others if set(other.topics) & set(statement.topics)]
    pairs = []
    for line in (*statement.lines("states"), *statement.lines("asks")):
        for _ in range(UNRELATED_PER_PHRASING):
            pool = nearby if nearby and rng.random() < 0.5 else others
            if pool:
                pairs.append(Pair(line, rng.choice(pool).text, UNRELATED))
    return pairs


def _as_clause(text: str) -> str:
    """"Attention uses KL divergence." -> "attention uses KL divergence" (to go inside a template)."""
    clause = text.strip().rstrip(".!")
    if len(clause) > 1 and clause[0].isupper() and not clause[1].isupper():
        clause = clause[0].lower() + clause[1:]
    return clause


_PUNCTUATION = re.compile(r"[.,;:!?'\"]")


def _casual(text: str) -> str:
    return " ".join(_PUNCTUATION.sub("", text).lower().split())


def _without_duplicates(pairs: list[Pair]) -> list[Pair]:
    """The first label given to a (message, statement) pair wins: phrasings take precedence over templates."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for pair in pairs:
        key = (pair.message.lower(), pair.statement.lower())
        if key not in seen:
            seen.add(key)
            kept.append(pair)
    return kept
