"""Real text by others that the stance model also learns from: accurate sentences from public tutorials,
notes and answers, and learners' questions, each with the address of its page (content/stance_training.yaml).

The bank's own phrasings were written here; a model trained only on them learns that a sentence about the
same thing as a misconception asserts it. These lines teach it otherwise: each sentence or question is
paired with the two misconceptions that share most of its words, labelled "does not assert" (whether it
denies them, asks about them or is about something else is left open; explainer/pairs.py). `kind` records
which of the two it is. Never a page of the chat's held-out sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from kqv_demo.content.schema import Strict
from kqv_demo.content.yamlfile import ContentError, read_yaml, validate_model

FILE_NAME = "stance_training.yaml"
MAX_FILE_BYTES = 512 * 1024


class StanceText(Strict):
    text: str = Field(min_length=8, max_length=400)
    kind: Literal["true", "question"]  # an accurate statement, or a question that asserts nothing
    source: str = Field(pattern=r"^https?://\S+$")

    @field_validator("kind", mode="before")
    @classmethod
    def _yaml_true(cls, kind: object) -> object:
        return "true" if kind is True else kind  # YAML reads an unquoted `kind: true` as a boolean


def load_stance_texts(file: Path) -> tuple[list[StanceText], list[ContentError]]:
    """The texts in `file`, and one error per problem (`file:line: field: message`); a bad entry is left
    out."""
    document, errors = read_yaml(file, MAX_FILE_BYTES)
    if document is None:
        return [], errors
    entries = document.data.get("texts") if isinstance(document.data, dict) else None
    if not isinstance(entries, list):
        return [], errors + [ContentError(file, 1, "texts", "expected a list under 'texts:'")]
    texts, seen = [], set()
    for index, entry in enumerate(entries):
        text, invalid = validate_model(StanceText, entry, document, ("texts", index))
        if text is not None and text.text.lower() in seen:
            invalid.append(document.error(("texts", index, "text"), "the same text is listed twice"))
        errors += invalid
        if text is not None and not invalid:
            seen.add(text.text.lower())
            texts.append(text)
    return texts, errors
