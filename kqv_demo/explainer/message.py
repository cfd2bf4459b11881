"""What the learner typed, made safe to read: control characters gone, length capped, language checked.

    cleaned = clean_message("so attention uses KL divergence, right?\\x00")
    cleaned.text       # "so attention uses KL divergence, right?"
    cleaned.problem    # None, or why the message cannot be answered ("empty", "not-english")
    cleaned.notices    # things the learner should be told (the message was cut...)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from kqv_demo.markup import literal_block

MAX_MESSAGE_CHARS = 1000
"""Longer messages are cut to this many characters, with a notice (no question needs more)."""
MAX_READ_CHARS = 50 * MAX_MESSAGE_CHARS
"""Characters looked at before cleaning (control characters and spaces may be most of a message)."""

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")

# Function words: a message made of other languages' words and few English ones is not English.
ENGLISH_WORDS = frozenset(
    "the a an is are was were be been do does did what how why when where which who whom of to in on at by "
    "for with from and or but not no it its it's this that these those i you we they he she my your our me "
    "us them can could would should will shall may might must have has had so if then than as about into "
    "there here just only also very too right yes please tell explain".split()
)
OTHER_LANGUAGE_WORDS = frozenset(
    # Spanish, Portuguese, French, German, Italian, Dutch
    "el la los las que qué es un una unos por para como cómo cuál porque pero muy hace hacen está son "
    "o uma um não é são do da dos das em com isso "
    "le les des est une et pour dans qui quoi pourquoi avec sur ce cette sont fait "
    "der die das und ist nicht ein eine einen mit auf für wie warum wird werden macht sind den dem des "
    "il lo gli che di è sono perché della nel con cosa "
    "het een en niet wat hoe waarom zijn van".split()
) - ENGLISH_WORDS


@dataclass(frozen=True)
class CleanMessage:
    text: str
    problem: str | None = None  # "empty" | "not-english"
    notices: list[str] = field(default_factory=list)


def strip_control_characters(text: str) -> str:
    """Control, format and private-use characters removed; line breaks and tabs become spaces."""
    kept = []
    for character in text:
        category = unicodedata.category(character)
        if character in "\n\r\t" or category == "Zs":
            kept.append(" ")
        elif category[0] != "C":
            kept.append(character)
    return "".join(kept)


def is_probably_english(text: str) -> bool:
    """MiniLM reads English only: refuse mostly non-Latin scripts and sentences of foreign function words."""
    letters = [character for character in text if character.isalpha()]
    if not letters:
        return True
    non_latin = sum(not _is_latin(character) for character in letters)
    if non_latin / len(letters) > 0.3:
        return False
    words = [word.lower() for word in _WORD.findall(text)]
    foreign = sum(word in OTHER_LANGUAGE_WORDS for word in words)
    english = sum(word in ENGLISH_WORDS for word in words)
    inverted_mark = "¿" in text or "¡" in text
    return not (inverted_mark or (foreign >= 2 and foreign > english))


def _is_latin(character: str) -> bool:
    return unicodedata.name(character, "").startswith("LATIN")


def clean_message(raw: str | None) -> CleanMessage:
    raw = raw or ""
    # Cleaning reads at most MAX_READ_CHARS: the work per message stays bounded whatever is sent.
    text = _SPACE.sub(" ", strip_control_characters(raw[:MAX_READ_CHARS])).strip()
    notices = []
    if len(text) > MAX_MESSAGE_CHARS or len(raw) > MAX_READ_CHARS:
        size = f"{len(text):,}" if len(raw) <= MAX_READ_CHARS else f"more than {MAX_READ_CHARS:,}"
        notices.append(
            f"Your message has {size} characters; I read only the first {MAX_MESSAGE_CHARS:,}. "
            "Ask one question at a time for the best answer."
        )
        text = text[:MAX_MESSAGE_CHARS].rstrip()
    if not any(character.isalnum() for character in text):
        return CleanMessage(text, "empty", notices)
    if not is_probably_english(text):
        return CleanMessage(text, "not-english", notices)
    return CleanMessage(text, None, notices)


def escape_markdown(text: str) -> str:
    """User text shown literally in Markdown (see kqv_demo.markup, the one escaping helper)."""
    return literal_block(text)


_TERMS = [
    (re.compile(r"\bllms\b", re.I), "large language models"),
    (re.compile(r"\bllm\b", re.I), "large language model"),
    (re.compile(r"\b(?:kqv|qkv)\b", re.I), "queries keys and values"),
    (re.compile(r"\battn\b", re.I), "attention"),
    (re.compile(r"\bkl\b", re.I), "KL divergence"),
]
_DOUBLED = re.compile(r"\bKL divergence diverg\w*", re.I)


def normalise_terms(text: str) -> str:
    """Spell out abbreviations the sentence model may not know (LLM, QKV), for phrasings and messages alike."""
    for pattern, spelled in _TERMS:
        text = pattern.sub(spelled, text)
    return _DOUBLED.sub("KL divergence", text)

