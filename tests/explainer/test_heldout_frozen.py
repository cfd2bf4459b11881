"""The held-out sets are frozen: their labels were fixed before the chat first ran on them, and nobody
may tune them afterwards. Any edit shows up here as a changed hash."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kqv_demo.content.loader import CONTENT_DIR
from kqv_demo.content.stance_texts import FILE_NAME as STANCE_TEXTS_FILE
from kqv_demo.content.stance_texts import load_stance_texts
from kqv_demo.explainer.evaluate import load_eval_set

HELDOUT = Path(__file__).parent / "heldout"
FROZEN = {
    "set_a_learners.yaml": "3c203a71c5e182a17b33e73f8d165787fd87b94d1ac86afef8f56be93f05f1a9",
    "set_b_tutorials.yaml": "576eb2d17018b3877225fd565077c234ffba585566fd0fad4b660f1a18f44e79",
    "set_d_dialogue.yaml": "6faa157ce530b5136f7622bd0cf72abd4deebfaa11dd2983ac1df1f81883e116",
}


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_held_out_set_is_unchanged_since_it_was_frozen(name: str):
    assert hashlib.sha256((HELDOUT / name).read_bytes()).hexdigest() == FROZEN[name]


def test_held_out_sets_load_and_give_every_message_its_source_address():
    messages = [message for name in ("set_a_learners.yaml", "set_b_tutorials.yaml")
                for message in load_eval_set(HELDOUT / name)]
    assert len(messages) >= 500
    assert all(message.source and message.source.startswith("http") for message in messages)
    true_or_neutral = sum(message.stance in ("affirm", "explain") for message in messages)
    assert true_or_neutral >= 300  # enough to tell a false-"No" rate of 1 in 100 from 1 in 10


def _page(address: str) -> str:
    """An address without scheme, "www.", query, fragment or trailing slash: one page, however linked."""
    parts = urlsplit(address.strip())
    return (parts.netloc.lower().removeprefix("www.") + parts.path).rstrip("/")


def test_the_stance_model_learns_from_no_page_of_a_held_out_or_public_dev_set():
    """content/stance_training.yaml is training text: a page the chat is measured on must not be in it, or
    the held-out score would measure what the model was taught."""
    measured_sets = (*HELDOUT.glob("set_*.yaml"), Path(__file__).parent / "public_dev_set.yaml")
    measured = [message for path in measured_sets for message in load_eval_set(path)]
    measured_pages = {_page(message.source) for message in measured if message.source}
    measured_texts = {message.text.strip().lower() for message in measured}
    texts, errors = load_stance_texts(CONTENT_DIR / STANCE_TEXTS_FILE)
    assert not errors and len(measured_pages) > 300
    assert not [text.source for text in texts if _page(text.source) in measured_pages]
    assert not [text.text for text in texts if text.text.strip().lower() in measured_texts]
