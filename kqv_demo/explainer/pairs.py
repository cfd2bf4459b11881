"""Training pairs for the stance model, generated from the bank alone, deterministically.

Each pair is (message, statement, label): does the message assert the statement (or take it for
granted), deny it, only ask about its subject, or say nothing about it? The bank's phrasings give most
pairs; the hardest are a misconception against its own correction (the same words, the opposite claim),
which is exactly where similarity alone fails ("keys are stored in the model" / "keys are computed from
the context, not stored in the model"), and a true statement against the misconceptions of other claims
that share most of its words: "both add the position vector to the token embedding" does not assert
"the positional encoding is concatenated to the token embedding" (a partial label, NOT_ASSERTS). Real
text by others (content/stance_training.yaml) is paired too, so that the model does not learn only how this
project's authors write: accurate sentences and learners' questions like a true phrasing, and sentences
that assert a misconception like the bank's own `states` phrasings (asserting it, denying its correction).

    pairs = training_pairs(vetted_statements(bank), bank.stance_texts)
    pairs[0]    # Pair("so attention uses KL divergence, right?", "Attention compares ... KL ...", ASSERTS)
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from kqv_demo.content.stance_texts import StanceText
from kqv_demo.explainer.message import ENGLISH_WORDS
from kqv_demo.explainer.statements import Statement

ASSERTS, DENIES, ASKS, UNRELATED = 0, 1, 2, 3
LABELS = ("asserts", "denies", "asks", "unrelated")  # what the model outputs
# A partial label, for training only: the message does NOT assert the statement, and which of the other three
# it does is not known (a true sentence against a misconception it shares words with may deny it or be about
# something else; either way it must never be read as asserting it). Trained with -log(1 - P(asserts)).
NOT_ASSERTS = 4
PAIRS_FORMAT = 3
UNRELATED_PER_PHRASING = 1  # one other statement per phrasing: a nearby one on a shared topic, else any
# Lexical neighbours: a true statement's phrasings against the misconception of another claim whose words
# overlap most with them; a public sentence or question against its two closest misconceptions. Word
# overlap, not MiniLM similarity, picks them: it needs no model (the pairs stay the same on every CPU) and
# shared words are what misleads the model.
NEIGHBOURS_PER_PHRASING = 1
NEIGHBOURS_PER_PUBLIC_TEXT = 2
MIN_WORD_OVERLAP = 0.12  # Jaccard of content words; below it the two share too little to mislead


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


def training_pairs(statements: list[Statement], public_texts: Sequence[StanceText] = (),
                   seed: int = 0) -> list[Pair]:
    """Every pair the bank (and the public texts) give, in a fixed order; the same input always gives the
    same list."""
    rng = random.Random(seed)
    words = _Words(statements)
    pairs: list[Pair] = []
    for statement in statements:
        pairs += _phrasing_pairs(statement)
        pairs += _template_pairs(statement, rng)
        pairs += _unrelated_pairs(statement, statements, rng)
    for statement in statements:
        pairs += _lexical_neighbour_pairs(statement, words)
    by_id = {statement.id: statement for statement in statements}
    for text in public_texts:
        pairs += (_public_misconception_pairs(text, by_id) if text.kind == "misconception"
                  else _public_text_pairs(text, words))
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


def _lexical_neighbour_pairs(statement: Statement, words: _Words) -> list[Pair]:
    """Each phrasing that asserts a true `statement` does not assert the misconception of another claim that
    shares most of its words (a truth cannot assert a misconception; it may deny it or be about something
    else, so the label is partial). Its own opposite is left out: that pair is a denial, learned from the
    `denies` phrasings."""
    if statement.kind != "truth":
        return []
    return [Pair(line, neighbour.text, NOT_ASSERTS)
            for line in (statement.text, *statement.lines("states"))
            for neighbour in words.closest(line, "misconception", NEIGHBOURS_PER_PHRASING, besides=statement)]


def _public_text_pairs(text: StanceText, words: _Words) -> list[Pair]:
    """Neither an accurate sentence nor a question that asserts nothing asserts the misconceptions it shares
    words with (whether it denies one, asks about it or is about something else is not known)."""
    return [Pair(text.text, neighbour.text, NOT_ASSERTS)
            for neighbour in words.closest(text.text, "misconception", NEIGHBOURS_PER_PUBLIC_TEXT)]


def _public_misconception_pairs(text: StanceText, by_id: dict[str, Statement]) -> list[Pair]:
    """A sentence that asserts a claim's misconception asserts it and denies its correction, as the claim's
    own `states` phrasings do (statements.py). A claim missing from the bank gives no pair."""
    wrong = by_id.get(f"misconception:{text.claim}")
    if wrong is None:
        return []
    pairs = [Pair(text.text, wrong.text, ASSERTS)]
    if wrong.opposite in by_id:
        pairs.append(Pair(text.text, by_id[wrong.opposite].text, DENIES))
    return pairs


_WORD = re.compile(r"[a-z0-9_√]+")
# English function words, and quantifiers that say nothing about a sentence's subject.
_STOPWORDS = ENGLISH_WORDS | frozenset(
    "all any being each every more most one other same some such their two".split())


def content_words(text: str) -> frozenset[str]:
    """The words that carry a sentence's subject, lower-cased, a plural or -ing/-ed ending cut off."""
    return frozenset(_stem(word) for word in _WORD.findall(text.lower()) if word not in _STOPWORDS)


def _stem(word: str) -> str:
    """"queries" -> "query", "keys" -> "key", "computed"/"computes"/"computing" -> "comput"."""
    if len(word) >= 5 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) >= 4 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    for ending in ("ing", "ed", "e"):
        if len(word) >= len(ending) + 3 and word.endswith(ending):
            return word[: -len(ending)]
    return word


class _Words:
    """The statements' content words, to find the ones a text shares most words with (Jaccard, against the
    closest of each statement's wordings). An index from each word to the wordings that hold it means a text
    is compared only with wordings it shares a word with (a plain scan cost about a second per Explainer)."""

    def __init__(self, statements: list[Statement]) -> None:
        self.statements = statements
        # each statement's wordings apart: one long union would make every short text look far from it
        self.wordings: list[tuple[int, frozenset[str]]] = [
            (index, content_words(line)) for index, statement in enumerate(statements)
            for line in (statement.text, *statement.lines("states"))]
        # kind -> word -> the wordings of that kind's statements that contain the word
        self.holding: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for wording, (index, words) in enumerate(self.wordings):
            for word in words:
                self.holding[statements[index].kind][word].append(wording)

    def closest(self, text: str, kind: str, count: int, besides: Statement | None = None) -> list[Statement]:
        """The `count` statements of `kind` sharing most words with `text` (at least MIN_WORD_OVERLAP),
        leaving out `besides`, its opposite and its claim's other statements; ties by bank order."""
        own = content_words(text)
        holding = self.holding[kind]
        shared = Counter(wording for word in own for wording in holding.get(word, ()))
        overlap: dict[int, float] = {}
        for wording, common in shared.items():
            index, words = self.wordings[wording]
            jaccard = common / (len(own) + len(words) - common)
            if jaccard > overlap.get(index, 0.0):
                overlap[index] = jaccard
        scored = sorted((-value, index) for index, value in overlap.items() if value >= MIN_WORD_OVERLAP
                        and not (besides and _related(self.statements[index], besides)))
        return [self.statements[index] for _, index in scored[:count]]


def _related(one: Statement, other: Statement) -> bool:
    return (one.id in (other.id, other.opposite)
            or (one.claim_id is not None and one.claim_id == other.claim_id))


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
