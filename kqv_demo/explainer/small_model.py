"""“Ask the small model”: SmolLM2-135M-Instruct's raw, unvetted answer to the same message.

A live lesson in why a chatbot agreeing with you is not evidence: the model continues the chat template
with likely tokens; nothing checks them against a source.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kqv_demo.errors import UserInputError
from kqv_demo.explainer.message import clean_message
from kqv_demo.runtime import Runtime, one_thread

SMALL_MODEL_MAX_CHARS = 600  # keeps the chat template (and its assistant header) inside the prompt limit
PROMPT_TOKEN_LIMIT = 512


@dataclass(frozen=True)
class SmallModelAnswer:
    text: str  # greedy continuation, special tokens removed
    first_token_top: list[tuple[str, float]]  # the 5 likeliest first tokens and their probabilities
    new_tokens: int


def ask_small_model(runtime: Runtime, message: str, max_new_tokens: int = 48, top: int = 5) -> SmallModelAnswer:
    cleaned = clean_message(message)
    if cleaned.problem == "empty":
        raise UserInputError("The message is empty: type something for the small model to answer.")
    prompt = runtime.chat_prompt(cleaned.text[:SMALL_MODEL_MAX_CHARS])
    with one_thread():
        trace = runtime.trace(prompt, names_filter=lambda name: False, max_tokens=PROMPT_TOKEN_LIMIT)
        _ids, _truncation, steps = runtime.generate(prompt, max_new_tokens, max_tokens=PROMPT_TOKEN_LIMIT)
    probabilities = torch.softmax(trace.logits[-1].float(), dim=-1)
    values, ids = torch.topk(probabilities, top)
    tokenizer = runtime.smollm2.tokenizer
    first = [(tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, ids)]
    text = tokenizer.decode([step.token_id for step in steps], skip_special_tokens=True).strip()
    return SmallModelAnswer(text, first, len(steps))
