"""Score the chat on a labelled message set (the dev set, or any held-out file in the same YAML format).

    messages:
      - {text: "so attention uses KL divergence, right?", stance: refute, topics: [kl-divergence]}
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kqv_demo.content.schema import Topic
from kqv_demo.errors import UserInputError

DEV_SET = Path(__file__).resolve().parents[2] / "tests" / "explainer" / "dev_set.yaml"


class Expected(BaseModel):
    """One labelled message. Held-out sets (tests/explainer/heldout/) also say where the text was
    written (`source`), what kind of message it is and, for a misconception, what is false and what is
    true; a message from the source dialogue gives its `lines` instead of its text (the dialogue is quoted
    from its file, not copied into the project)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = ""
    stance: Literal["refute", "affirm", "explain", "decline"]
    topics: list[Topic] = Field(default_factory=list)
    claim_id: str | None = None
    kind: Literal["misconception", "true", "question", "off_topic"] | None = None
    source: str | None = None
    lines: tuple[int, int] | None = None  # first and last line in the source dialogue
    misconception: str | None = None
    truth: str | None = None
    note: str | None = None


class EvalSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[Expected] = Field(min_length=1)


def _with_dialogue_text(messages: list[Expected]) -> list[Expected]:
    """Messages given by `lines` get their text from the source dialogue (a clear error without it)."""
    if all(message.lines is None for message in messages):
        return messages
    from kqv_demo.content.loader import dialogue_path

    try:
        lines = dialogue_path().read_text(encoding="utf-8").split("\n")
    except OSError:
        raise UserInputError(f"This set quotes the source dialogue, which is not at {dialogue_path()} "
                             "(set $KQV_DIALOGUE).") from None
    return [message.model_copy(update={"text": "\n".join(lines[message.lines[0] - 1: message.lines[1]])})
            if message.lines else message for message in messages]


def load_eval_set(path: Path | str = DEV_SET) -> list[Expected]:
    """The labelled messages in `path`; a clear message (not a traceback) when the file is wrong."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, list):  # a bare list of messages
            data = {"messages": data}
        return _with_dialogue_text(EvalSet.model_validate(data).messages)
    except OSError as error:
        raise UserInputError(f"Cannot read the evaluation set {path}: {error.strerror or error}.") from None
    except yaml.YAMLError as error:
        raise UserInputError(f"{path} is not valid YAML: {error}") from None
    except ValidationError as invalid:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors()[:5])
        raise UserInputError(f"{path} does not have the evaluation-set format ({problems}).") from None


def score_dev_set(replies: Sequence, expected: Sequence[Expected]) -> dict[str, float | int]:
    """The numbers of the quality bar (QUALITY_BAR), with the counts behind the share of true statements
    and open questions called misconceptions (replies need .stance, .topics and .claim_id, in the order of
    `expected`)."""
    if len(replies) != len(expected):
        raise ValueError(f"{len(replies)} replies for {len(expected)} expected messages")
    pairs = list(zip(replies, expected))
    refute = [(r, e) for r, e in pairs if e.stance == "refute"]
    decline = [(r, e) for r, e in pairs if e.stance == "decline"]
    on_topic = [(r, e) for r, e in pairs if e.stance != "decline"]
    answered = [(r, e) for r, e in on_topic if r.stance != "decline"]
    return {
        "messages": len(pairs),
        "misconceptions_corrected": _share(r.stance == "refute" for r, _ in refute),
        "agreement_with_misconception": sum(r.stance == "affirm" for r, _ in refute),
        "offtopic_declined": _share(r.stance == "decline" for r, _ in decline),
        "ontopic_wrongly_declined": _share(r.stance == "decline" for r, _ in on_topic),
        "topics_right": _share(bool(set(r.topics) & set(e.topics)) for r, e in answered),
        "truths_refuted": sum(r.stance == "refute" for r, e in on_topic if e.stance != "refute"),
        "truths_and_questions": sum(e.stance != "refute" for _, e in on_topic),
        "truths_refuted_share": _share((r.stance == "refute" for r, e in on_topic if e.stance != "refute"), empty=0.0),
        "refuted_with_labelled_claim": _share(r.claim_id == e.claim_id for r, e in refute
                                              if e.claim_id and r.stance == "refute"),
    }


def _share(flags: Iterable[bool], empty: float = 1.0) -> float:
    values = list(flags)
    return round(sum(values) / len(values), 4) if values else empty


# The bar of issue #13, for sets held out from tuning (tests/explainer/heldout/): measured and reported
# (`ask --eval` prints `meets_bar`), not tested, since a test on those sets would invite tuning on them.
QUALITY_BAR = {
    "misconceptions_corrected": (">=", 0.85),
    "agreement_with_misconception": ("<=", 0),
    "truths_refuted_share": ("<=", 0.01),  # truths and open questions answered "No": 1 in 100 at most
    "offtopic_declined": (">=", 0.95),
    "ontopic_wrongly_declined": ("<=", 0.05),
    "topics_right": (">=", 0.90),
}


def meets_bar(scores: dict) -> dict[str, bool]:
    return {
        name: scores[name] >= limit if sign == ">=" else scores[name] <= limit
        for name, (sign, limit) in QUALITY_BAR.items()
    }


def run_eval(explainer, expected: Sequence[Expected]) -> tuple[list, dict, float]:
    """Answer every message (one warm-up first); returns replies, scores and the median ms per message."""
    explainer.answer(expected[0].text)
    replies, times = [], []
    for item in expected:
        started = time.perf_counter()
        replies.append(explainer.answer(item.text))
        times.append((time.perf_counter() - started) * 1000)
    return replies, score_dev_set(replies, expected), round(statistics.median(times), 1)
