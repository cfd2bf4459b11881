"""Round files: an instructor's round as YAML under content/rounds/, validated like the claim bank.

    id: workshop-45
    title: Attention workshop (45 minutes)
    topics: [kl-divergence, dot-product]
    kinds: [verdict, multiple_choice]
    count: 12
    order: bank               # or shuffled (default)
    time_limit_minutes: 45    # optional, 1..180
    feedback: end             # or immediate (default)

Every field of RoundSpec may be used. Each problem is reported as `file:line: field: message`.
"""

from __future__ import annotations

import difflib
import hashlib
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from kqv_demo.content.loader import Bank, content_dir
from kqv_demo.content.yamlfile import (
    ContentError, YamlDocument, capped, decode_upload, internal_error, parse_yaml, read_yaml, shown,
    validate_model,
)
from kqv_demo.quiz.items import items_for_claim
from kqv_demo.quiz.predict import prediction_items
from kqv_demo.quiz.rounds import BUILT_IN, RoundSpec, build_round

MAX_ROUND_FILE_BYTES = 64 * 1024
SUGGESTED = 3  # unknown ids that get a "did you mean": each costs a comparison with every known id
SUGGESTED_MAX_LENGTH = 120  # longer unknown ids get no suggestion (comparing them costs more)
CACHED_UPLOADS = 16  # parsed uploads kept per process, so that a page rerun does not parse again
CLAIM_ONLY_FIELDS = {"quote", "speaker", "refutation", "quiz", "phrasings", "misconception", "seen_at", "references"}


def rounds_dir(root: Path | None = None) -> Path:
    """content/rounds (or `root`/rounds for another content folder)."""
    return (root or content_dir()) / "rounds"


@dataclass
class RoundFiles:
    specs: dict[str, RoundSpec] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    errors: list[ContentError] = field(default_factory=list)


def load_round_files(bank: Bank, folder: Path | None = None) -> RoundFiles:
    """Every valid round file in `folder` (default content/rounds); the broken ones are reported."""
    folder = folder or rounds_dir()
    loaded = RoundFiles()
    for file in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        spec, errors = load_round_file(bank, file)
        if spec is not None and spec.id in loaded.specs:
            errors.append(ContentError(file, 1, "id", f"duplicate id; also used in {loaded.files[spec.id].name}"))
        loaded.errors += errors
        if spec is not None and not errors:
            loaded.specs[spec.id] = spec
            loaded.files[spec.id] = file
    return loaded


def load_round_file(bank: Bank, file: Path) -> tuple[RoundSpec | None, list[ContentError]]:
    """The round in `file`, or None and its errors (at most MAX_ERRORS listed, then how many more)."""
    try:
        document, errors = read_yaml(file, MAX_ROUND_FILE_BYTES)
        return _checked(bank, document, errors)
    except Exception as error:  # a bug met on one file must not take down the page or the other files
        return None, [internal_error(file, error)]


@dataclass(frozen=True)
class _ParsedUpload:
    bank: weakref.ReferenceType[Bank]  # the entry holds only for this very bank (ids are reused after GC)
    spec: RoundSpec | None
    errors: tuple[ContentError, ...]


_parsed_uploads: OrderedDict[tuple[str, str, int], _ParsedUpload] = OrderedDict()
_parsed_uploads_lock = threading.Lock()


def parse_round_upload(bank: Bank, name: str, data: bytes) -> tuple[RoundSpec | None, list[ContentError]]:
    """An uploaded round file: size-limited, UTF-8, then validated like a file under content/rounds.

    Streamlit reruns the page on every click with the same upload, so the result is kept per process,
    keyed by the name, a hash of the bytes and the bank it was checked against (the last CACHED_UPLOADS).
    """
    key = (name, hashlib.sha256(data).hexdigest(), id(bank))
    with _parsed_uploads_lock:
        cached = _parsed_uploads.get(key)
        if cached is not None and cached.bank() is bank:
            _parsed_uploads.move_to_end(key)
            return cached.spec, list(cached.errors)
    spec, errors = _parse_upload(bank, name, data)
    with _parsed_uploads_lock:
        _parsed_uploads[key] = _ParsedUpload(weakref.ref(bank), spec, tuple(errors))
        while len(_parsed_uploads) > CACHED_UPLOADS:
            _parsed_uploads.popitem(last=False)
    return spec, errors


def _parse_upload(bank: Bank, name: str, data: bytes) -> tuple[RoundSpec | None, list[ContentError]]:
    try:
        text, errors = decode_upload(Path(name), data, MAX_ROUND_FILE_BYTES)
        if text is None:
            return None, errors
        document, errors = parse_yaml(Path(name), text)
        return _checked(bank, document, errors)
    except Exception as error:  # a bug met on an upload must not show a traceback
        return None, [internal_error(Path(name), error)]


def looks_like_round_file(file: Path) -> bool:
    """True for files in a rounds/ folder, or YAML mappings without any claim-only field."""
    if file.parent.name == "rounds":
        return True
    document, _errors = read_yaml(file, MAX_ROUND_FILE_BYTES)
    return document is not None and isinstance(document.data, dict) and not CLAIM_ONLY_FIELDS & set(document.data)


def _checked(bank: Bank, document: YamlDocument | None,
             errors: list[ContentError]) -> tuple[RoundSpec | None, list[ContentError]]:
    if document is None:
        return None, errors
    spec, invalid = validate_model(RoundSpec, document.data, document)
    errors = errors + invalid
    if isinstance(document.data, dict):
        errors += _unknown_references(bank, document.data, document)
    if spec is not None and not errors:
        errors += _usable(bank, spec, document)
    return (spec if not errors else None), capped(errors)


def _unknown_references(bank: Bank, data: dict, document: YamlDocument) -> list[ContentError]:
    """Claim ids and item ids that are not in the bank (checked even when other fields are invalid).

    Only the first SUGGESTED get a "did you mean": a 64 KB file can hold thousands of unknown ids.
    """
    unknown = []
    claims, item_ids = data.get("claims"), data.get("item_ids")
    for index, claim_id in enumerate(claims if isinstance(claims, list) else []):
        if isinstance(claim_id, str) and claim_id not in bank.claims:
            unknown.append((("claims", index), f"no claim {shown(claim_id)} in the bank", claim_id, bank.claims))
    if isinstance(item_ids, list) and item_ids:
        known_items = {item.id for claim in bank.claims.values() for item in items_for_claim(claim)}
        known_items |= {item.id for item in prediction_items() if item.claim_id in bank.claims}
        for index, item_id in enumerate(item_ids):
            if isinstance(item_id, str) and item_id not in known_items:
                unknown.append((("item_ids", index), f"no item {shown(item_id)} (items are CLAIM-ID:KIND)",
                                item_id, known_items))
    return [document.error(path, message + (_did_you_mean(name, known) if number < SUGGESTED else ""))
            for number, (path, message, name, known) in enumerate(unknown)]


def _usable(bank: Bank, spec: RoundSpec, document: YamlDocument) -> list[ContentError]:
    if spec.id in BUILT_IN:
        return [document.error(("id",), f"{shown(spec.id)} is a built-in round; choose another id")]
    if not build_round(bank, spec, prediction_items(spec.seed)):
        return [document.error((), "no question matches these choices; widen the topics, claims or kinds")]
    return []


def _did_you_mean(name: str, known) -> str:
    if len(name) > SUGGESTED_MAX_LENGTH:
        return ""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
