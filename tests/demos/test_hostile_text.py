"""Every demo's words (explain, headline, status, details) show the learner's text and the model's
tokens literally: a prompt, a text parameter or a generated token that is Markdown never becomes a
link, an image, an icon, a colour, math or bold in the page (M4)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from kqv_demo.demos import DEMOS
from kqv_demo.demos.base import Demo
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime
from tests.hostile import HOSTILE, HOSTILE_LINES, hostile_findings

# Strings a demo result holds that come from our code or the model's files, not from a learner or
# the model's output: parameter names, hashes, the depth table's sources (which link on purpose).
OURS = {"truncation", "lm_head", "vocabulary_tables", "digest_at_load", "digest_after", "changed_tensors",
        "smollm2_bias_names", "minilm_bias_names", "models", "parameters", "sources"}


def _hostile_copy(value: Any, payload: str) -> Any:
    """`value` with every learner- or model-derived string replaced by `payload`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {field.name: _hostile_copy(getattr(value, field.name), payload)
                   for field in dataclasses.fields(value) if field.name not in OURS}
        return dataclasses.replace(value, **changes)
    if isinstance(value, str):
        return payload
    if isinstance(value, list) and value and all(isinstance(item, (str, list)) for item in value):
        return [_hostile_copy(item, payload) for item in value]
    return value


def _words(demo: Demo, result: Any) -> dict[str, str]:
    """Every Markdown string the Demo lab shows for `result`, by where it goes."""
    shown = {"explain": demo.explain(result)}
    for number, (label, value) in enumerate(demo.headline(result)):
        shown[f"headline {number} label"] = label
        shown[f"headline {number} value"] = value
    if demo.status:
        shown["status"] = demo.status(result)[1]
    if demo.details:
        shown["details"] = demo.details(result)
    return shown


def _leaks(demo: Demo, result: Any) -> dict[str, list[str]]:
    return {where: [str(f) for f in found] for where, text in _words(demo, result).items()
            if (found := hostile_findings(text))}


# Parameters that make a demo show more of the model's own text.
MORE_TEXT = {"confidence-readable": {"ask_model": True}, "no-learning-at-inference": {"max_new_tokens": 6}}


@pytest.fixture(scope="module")
def default_results(runtime: Runtime) -> dict[str, Any]:
    return {demo_id: demo.run(runtime, **MORE_TEXT.get(demo_id, {})) for demo_id, demo in DEMOS.items()}


@pytest.mark.parametrize("payload", [HOSTILE, HOSTILE_LINES], ids=["one line", "several lines"])
@pytest.mark.parametrize("demo_id", list(DEMOS))
def test_hostile_tokens_and_generated_text_show_literally(default_results, demo_id: str, payload: str):
    """Every token, word, generated reply and text parameter of the result replaced by Markdown
    payloads (links, images, autolinks, icons, colours, math, bold, a direction override, and
    headings, quotes, lists and a code fence over several lines)."""
    demo = DEMOS[demo_id]
    hostile = _hostile_copy(default_results[demo_id], payload)
    assert _leaks(demo, hostile) == {}


# A learner's own sentence and text parameters with payloads, computed by the real model.
HOSTILE_RUNS = {
    "keys-are-computed": ("I sat on the river bank " + HOSTILE, {"other": "I opened a bank account " + HOSTILE}),
    "causal-vs-bidirectional": ("I went to the bank " + HOSTILE, {"other": "I went to the bank to " + HOSTILE}),
    "fixed-depth": ("The capital of France is " + HOSTILE, {"other": HOSTILE}),
    "attention-sinks": (HOSTILE, {"other": "www.evil.example " + HOSTILE}),
    "confidence-readable": ("See https://evil.example/b and", {"candidates": " [click](https://evil.example/a), www"}),
    "context-changes-predictions": ("The capital of France is", {"prefix": HOSTILE + " Paris. ",
                                                                 "distractor": "My cat " + HOSTILE + " "}),
    "logit-lens": ("Visit www.evil.example or https://evil", {"target": "."}),
    "no-learning-at-inference": ("Repeat exactly: " + HOSTILE, {"max_new_tokens": 8}),
    "kv-cache-steps": ("Visit our site at https://evil", {"steps": 6}),
    "shared-neighbours": ("[click](https://evil.example/a), www.evil.example, kqv@evil.example; :red[KQVRED], "
                          ":material/home:, $KQVMATH$", {"neighbours": 1}),
}


@pytest.mark.parametrize("demo_id", [demo_id for demo_id, demo in DEMOS.items() if demo.prompt_label])
def test_a_hostile_prompt_shows_literally(runtime: Runtime, demo_id: str):
    demo = DEMOS[demo_id]
    prompt, params = HOSTILE_RUNS.get(demo_id, (demo.default_prompt + " " + HOSTILE, {}))
    try:
        result = demo.run(runtime, prompt, **params)
    except UserInputError as problem:  # the Demo lab shows this message through literal()
        pytest.fail(f"the hostile run was refused, so it tests nothing: {problem}")
    assert _leaks(demo, result) == {}
