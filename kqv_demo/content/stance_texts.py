"""Real text by others that the stance model also learns from, each line reworded from a sentence on a public
page and keeping that page's address (content/stance_training.yaml). Three kinds:

- "true": an accurate sentence from a tutorial, notes or an answer;
- "question": a learner's question that asserts nothing;
- "misconception": a sentence that asserts one of the bank's misconceptions, or takes it for granted
  (`claim` names the claim).

The bank's own phrasings were written here; a model trained only on them learns how this project's authors
write. Trained on them alone it read a sentence about the same thing as a misconception as asserting it, and
real people's confident, hedged, technical assertions as denials. The first two kinds are paired with the two
misconceptions that share most of their words, labelled "does not assert"; a misconception line asserts its
claim's misconception and denies its correction (explainer/pairs.py). Never a page of the chat's held-out or
public dev sets (tests/explainer/test_heldout_frozen.py).
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator, model_validator

from kqv_demo.content.schema import Strict
from kqv_demo.content.yamlfile import ContentError, read_yaml, validate_model

FILE_NAME = "stance_training.yaml"
MAX_FILE_BYTES = 512 * 1024


class StanceText(Strict):
    text: str = Field(min_length=8, max_length=400)
    kind: Literal["true", "question", "misconception"]
    source: str = Field(pattern=r"^https?://\S+$")
    claim: str | None = None  # for a misconception: the id of the claim whose misconception it asserts

    @field_validator("kind", mode="before")
    @classmethod
    def _yaml_true(cls, kind: object) -> object:
        return "true" if kind is True else kind  # YAML reads an unquoted `kind: true` as a boolean

    @model_validator(mode="after")
    def _claim_only_for_a_misconception(self) -> StanceText:
        if self.kind == "misconception" and not self.claim:
            raise ValueError("a misconception line needs `claim:` (the id of the claim it asserts)")
        if self.kind != "misconception" and self.claim:
            raise ValueError(f"only a misconception line names a claim; this one is {self.kind!r}")
        return self


def load_stance_texts(file: Path, verdicts: Mapping[str, str] | None = None
                      ) -> tuple[list[StanceText], list[ContentError]]:
    """The texts in `file`, and one error per problem (`file:line: field: message`); a bad entry is left
    out. `verdicts` (claim id -> verdict) checks that each misconception line names a false or partly claim
    of the bank; without it (the file checked alone) the ids are not checked."""
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
        if text is not None and text.claim and verdicts is not None:
            problem = _claim_problem(text.claim, verdicts)
            if problem:
                invalid.append(document.error(("texts", index, "claim"), problem))
        errors += invalid
        if text is not None and not invalid:
            seen.add(text.text.lower())
            texts.append(text)
    return texts, errors


def _claim_problem(claim: str, verdicts: Mapping[str, str]) -> str | None:
    if claim not in verdicts:
        return f"no claim has the id {claim!r}"
    if verdicts[claim] == "true":
        return f"claim {claim!r} is true: it has no misconception to assert"
    return None
