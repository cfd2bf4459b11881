"""Load and validate the claim bank; every problem is reported with its file, line and field.

    bank = load_bank()            # never raises on bad content
    bank.claims["kl-divergence-compares-queries-and-keys"]
    bank.errors                   # [ContentError(file, line, field, message), ...]

A file that fails validation is left out and reported; the rest is served.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from kqv_demo.content.schema import TOPICS, Claim, TopicPage
from kqv_demo.content.stance_texts import FILE_NAME as STANCE_TEXTS_FILE
from kqv_demo.content.stance_texts import StanceText, load_stance_texts
from kqv_demo.content.yamlfile import (
    ContentError, YamlDocument, YamlPath, capped, internal_error, read_yaml, shown, validate_model,
)
from kqv_demo.settings import PROJECT_ROOT

CONTENT_DIR = PROJECT_ROOT / "content"
LINE_TOLERANCE = 6  # how far `line` may be from where the quote really starts
MAX_FILE_BYTES = 256 * 1024


def content_dir() -> Path:
    """The content folder: $KQV_CONTENT_DIR, else content/ in the project."""
    return Path(os.environ.get("KQV_CONTENT_DIR") or CONTENT_DIR)


def dialogue_path() -> Path:
    """The source dialogue: $KQV_DIALOGUE, else ../shared/source/dialogue.txt beside the project."""
    return Path(os.environ.get("KQV_DIALOGUE") or PROJECT_ROOT.parent / "shared" / "source" / "dialogue.txt")


@dataclass
class Bank:
    claims: dict[str, Claim] = field(default_factory=dict)
    topics: dict[str, TopicPage] = field(default_factory=dict)
    claim_files: dict[str, Path] = field(default_factory=dict)
    quote_lines: dict[str, int] = field(default_factory=dict)  # where each quote starts in the dialogue
    dialogue: Dialogue | None = None
    errors: list[ContentError] = field(default_factory=list)
    warnings: list[ContentError] = field(default_factory=list)
    # every phrasing seen so far (lower-cased) and the claim or topic it belongs to: one phrasing may not
    # stand for two things, or the chat's stance model would learn both labels for the same words
    phrasing_owners: dict[str, str] = field(default_factory=dict, repr=False)
    # real text by others that the chat's stance model also learns from (content/stance_training.yaml)
    stance_texts: list[StanceText] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors


# --- quotes ---------------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")


class Dialogue:
    """The source text, whitespace-normalised, with a map back to line numbers."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        pieces, starts = [], []
        for number, line in enumerate(text.splitlines(), start=1):
            words = _SPACE.sub(" ", line).strip()
            if words:
                starts.append((sum(len(p) + 1 for p in pieces), number))
                pieces.append(words)
        self.flat = " ".join(pieces)
        self._starts = starts

    def find(self, quote: str) -> int | None:
        """The line where `quote` starts, or None when it is not in the dialogue."""
        position = self.flat.find(_SPACE.sub(" ", quote).strip())
        if position < 0:
            return None
        line = 1
        for offset, number in self._starts:
            if offset > position:
                break
            line = number
        return line


    def excerpt(self, quote: str, before: int = 3, after: int = 3) -> list[tuple[int, str, bool]]:
        """The lines around `quote`: (line number, text, is part of the quote)."""
        needle = _SPACE.sub(" ", quote).strip()
        position = self.flat.find(needle)
        if position < 0:
            return []
        quoted = {
            number
            for index, (offset, number) in enumerate(self._starts)
            if offset < position + len(needle)
            and (self._starts[index + 1][0] if index + 1 < len(self._starts) else len(self.flat) + 1) > position
        }
        first = max(1, min(quoted) - before)
        last = min(len(self.lines), max(quoted) + after)
        return [(n, self.lines[n - 1], n in quoted) for n in range(first, last + 1)]


def load_dialogue(path: Path | None = None) -> Dialogue | None:
    path = path or dialogue_path()
    try:
        return Dialogue(path.read_text(encoding="utf-8"))
    except OSError:
        return None


# --- the bank ---------------------------------------------------------------------------------


def _known_demo_ids() -> set[str]:
    from kqv_demo.demos import DEMO_IDS  # the ids only: checking the bank must not import torch

    return set(DEMO_IDS)


def load_bank(root: Path | None = None, dialogue: Dialogue | None | bool = True) -> Bank:
    """Load every claim under root/claims and the topic pages in root/topics.yaml.

    `root` may also be a single claim file, or a topics file (named topics.yaml), to check just that.
    `dialogue=True` loads the default dialogue file; None or False skips the quote check.
    """
    root = root or content_dir()
    bank = Bank()
    if dialogue is True:
        dialogue = load_dialogue()
        if dialogue is None:
            bank.warnings.append(
                ContentError(dialogue_path(), 0, "quote", "dialogue file not found; quotes were not checked")
            )
    bank.dialogue = dialogue or None
    demo_ids = _known_demo_ids()
    if root.is_file():
        if root.name == "topics.yaml":
            _load_topics(root, bank, require_all=False)
        elif root.name == STANCE_TEXTS_FILE:
            _load_stance_texts(root, bank)
        else:
            _load_claim(root, bank, dialogue or None, demo_ids)
        return bank
    if not root.is_dir():
        bank.errors.append(ContentError(root, 0, "(path)", "no such file or folder"))
        return bank
    for file in sorted((root / "claims").glob("*.y*ml")):
        _load_claim(file, bank, dialogue or None, demo_ids)
    _load_topics(root / "topics.yaml", bank)
    if (root / STANCE_TEXTS_FILE).exists():  # optional: without it the model learns from the bank alone
        _load_stance_texts(root / STANCE_TEXTS_FILE, bank)
    return bank


def _load_stance_texts(file: Path, bank: Bank) -> None:
    try:
        # a folder's claims are loaded first, so misconception lines can be checked against them
        verdicts = {claim.id: claim.verdict for claim in bank.claims.values()} if bank.claims else None
        bank.stance_texts, errors = load_stance_texts(file, verdicts)
    except Exception as error:  # a bug met on this file must not take down the claims
        errors = [internal_error(file, error)]
    bank.errors += capped(errors)


def _load_claim(file: Path, bank: Bank, dialogue: Dialogue | None, demo_ids: set[str]) -> None:
    """Add the claim in `file` to the bank, or its errors (at most MAX_ERRORS of them listed)."""
    try:
        claim, errors = _checked_claim(file, bank, dialogue, demo_ids)
    except Exception as error:  # a bug met on one file must not take down the rest of the bank
        claim, errors = None, [internal_error(file, error)]
    bank.errors += capped(errors)
    if claim is not None and not errors:
        bank.claims[claim.id] = claim
        bank.claim_files[claim.id] = file


def _checked_claim(file: Path, bank: Bank, dialogue: Dialogue | None,
                   demo_ids: set[str]) -> tuple[Claim | None, list[ContentError]]:
    document, errors = read_yaml(file, MAX_FILE_BYTES)
    if document is None:
        return None, errors
    claim, invalid = validate_model(Claim, document.data, document)
    errors += invalid
    if claim is not None:
        errors += _cross_checks(claim, document, bank, dialogue, demo_ids)
    return claim, errors


def _cross_checks(
    claim: Claim, document: YamlDocument, bank: Bank, dialogue: Dialogue | None, demo_ids: set[str]
) -> list[ContentError]:
    errors = []

    def error(path: YamlPath, message: str) -> None:
        errors.append(document.error(path, message))

    if claim.id in bank.claims:
        error(("id",), f"duplicate id; also used in {bank.claim_files[claim.id]}")
    if claim.demo is not None and claim.demo.id not in demo_ids:
        error(("demo", "id"), f"no demo {shown(claim.demo.id)}; known demos: {', '.join(sorted(demo_ids))}")
    if dialogue is not None and claim.origin == "dialogue":
        found = dialogue.find(claim.quote)
        if found is None:
            error(("quote",), "not found in the dialogue (it must be verbatim, apart from whitespace)")
        elif abs(found - claim.line) > LINE_TOLERANCE:
            error(("line",), f"the quote starts at line {found} of the dialogue, not {claim.line}")
        else:
            bank.quote_lines[claim.id] = found
    for kind in ("states", "presupposes", "asks", "corrections"):
        for index, text in enumerate(getattr(claim.phrasings, kind)):
            owner = _claim_phrasing(bank, text, f"claim {claim.id}")
            if owner:
                error(("phrasings", kind, index), f"the same phrasing is already used by {owner}")
    return errors


def _claim_phrasing(bank: Bank, text: str, owner: str) -> str | None:
    """Record `text` as `owner`'s phrasing; the earlier owner when another one already has it."""
    key = " ".join(text.lower().split())
    earlier = bank.phrasing_owners.setdefault(key, owner)
    return earlier if earlier != owner else None


def _load_topics(file: Path, bank: Bank, require_all: bool = True) -> None:
    """Add the topic pages in `file` to the bank; its errors (at most MAX_ERRORS listed) to bank.errors."""
    if not file.exists():
        bank.errors.append(ContentError(file, 0, "(file)", "topic pages file is missing"))
        return
    try:
        errors = _checked_topics(file, bank, require_all)
    except Exception as error:  # a bug met on this file must not take down the claims
        errors = [internal_error(file, error)]
    bank.errors += capped(errors)


def _checked_topics(file: Path, bank: Bank, require_all: bool) -> list[ContentError]:
    document, errors = read_yaml(file, MAX_FILE_BYTES)
    if document is None:
        return errors
    entries = document.data.get("topics") if isinstance(document.data, dict) else None
    if not isinstance(entries, list):
        return errors + [ContentError(file, 1, "topics", "expected a list under 'topics:'")]
    syntax_ok = not errors
    for index, entry in enumerate(entries):
        page, invalid = validate_model(TopicPage, entry, document, ("topics", index))
        if page is not None and page.id in bank.topics:
            invalid.append(document.error(("topics", index, "id"), "duplicate topic"))
        if page is not None:
            invalid += _topic_phrasing_errors(page, bank, document, ("topics", index))
        errors += invalid
        if page is not None and not invalid:
            bank.topics[page.id] = page
    if require_all and syntax_ok:
        missing = [topic for topic in TOPICS if topic not in bank.topics]
        if missing:
            errors.append(ContentError(file, 1, "topics", f"no page for: {', '.join(missing)}"))
    return errors


def _topic_phrasing_errors(page: TopicPage, bank: Bank, document: YamlDocument,
                           at: YamlPath) -> list[ContentError]:
    owner = f"topic {page.id}"
    places = [(("asks", index), text) for index, text in enumerate(page.asks)]
    for number, truth in enumerate(page.truths):
        places += [(("truths", number, "statement"), truth.statement)]
        places += [(("truths", number, kind, index), text)
                   for kind in ("states", "asks") for index, text in enumerate(getattr(truth, kind))]
    errors = []
    for path, text in places:
        earlier = _claim_phrasing(bank, text, owner)
        if earlier:
            errors.append(document.error(at + path, f"the same phrasing is already used by {earlier}"))
    return errors


def content_signature(root: Path | None = None) -> str:
    """Changes whenever a content file is added, removed or edited (a cache key for the UI)."""
    root = root or content_dir()
    files = sorted(root.rglob("*.y*ml")) if root.is_dir() else [root]
    return ";".join(f"{f}:{f.stat().st_mtime_ns}:{f.stat().st_size}" for f in files if f.exists())
