"""Each model has its own pass slots: the chat's MiniLM never waits for SmolLM2, a short embedding runs
beside a long one, a generation lets others in between its tokens, and no single request is unbounded.

Waits below are for completion (with a generous limit, so that a deadlock fails instead of hanging),
never speed targets: what is checked is whether one request can finish while another holds its model.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from kqv_demo.errors import UserInputError
from kqv_demo.runtime import (
    EMBED_BATCH_TOKENS, MAX_NEW_TOKENS, MAX_REQUEST_TOKENS, MINILM, MINILM_PASSES_AT_ONCE, Runtime, length_batches,
)

DEADLOCK = 60  # seconds: only reached if the work cannot finish at all (it takes well under 1 s)


def _finishes_while_held(slot: threading.Semaphore, times: int | None, work) -> bool:
    """Hold `slot` `times` times (as that many running passes would; None: every free place), run
    `work` in another thread, and say whether it finished while the slot was held."""
    done, failures = threading.Event(), []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # reported by the caller's assertion
            failures.append(error)
        finally:
            done.set()

    held = 0
    while (times is None or held < times) and slot.acquire(blocking=False):
        held += 1
    assert held == times or (times is None and held > 0), f"could hold {held} of {times}"
    try:
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        finished = done.wait(DEADLOCK)
    finally:
        for _ in range(held):
            slot.release()
    worker.join()
    assert not failures, failures
    return finished


def test_the_chat_model_does_not_wait_for_smollm2(runtime: Runtime):
    """A SmolLM2 demo or export holds SmolLM2's slot: MiniLM embeddings and traces still run."""
    assert _finishes_while_held(runtime.smollm2.passes, 1, lambda: runtime.embed(["Keys are computed."]))
    assert _finishes_while_held(runtime.smollm2.passes, 1, lambda: runtime.trace("Keys", model=MINILM))


def test_smollm2_does_not_wait_for_the_chat_model(runtime: Runtime):
    assert _finishes_while_held(runtime.minilm.passes, None, lambda: runtime.trace("The cat sat"))


def test_a_short_embedding_runs_beside_a_long_one(runtime: Runtime):
    """While a long message's pass holds one MiniLM slot, a short question gets another."""
    assert MINILM_PASSES_AT_ONCE >= 2
    assert _finishes_while_held(runtime.minilm.passes, 1, lambda: runtime.embed(["What is a key?"]))


def test_smollm2_passes_run_one_at_a_time(runtime: Runtime):
    """A recorded SmolLM2 trace is large and one pass uses every core: a second pass waits for the first."""
    with runtime.smollm2.passes:
        assert not runtime.smollm2.passes.acquire(blocking=False)


def test_a_generation_lets_other_passes_in_between_its_tokens(runtime: Runtime):
    """A long reply takes SmolLM2's slot once per token: a short trace started meanwhile finishes first."""
    started, order, failures = threading.Event(), [], []

    def generation() -> None:
        try:
            def first_pass_seen(_name: str) -> bool:
                started.set()
                return False

            _, _, steps = runtime.generate("Count with me: 1, 2, 3, 4, 5, 6,", MAX_NEW_TOKENS,
                                           names_filter=first_pass_seen)
            order.append(("generation", len(steps)))
        except BaseException as error:  # reported below
            failures.append(error)
            started.set()

    worker = threading.Thread(target=generation)
    worker.start()
    assert started.wait(DEADLOCK)
    runtime.trace("The cat sat on the mat")
    order.append(("trace", 1))
    worker.join()
    assert not failures, failures
    assert order[0][0] == "trace", order
    assert order[1][1] >= 20, f"the generation stopped early ({order[1][1]} tokens): the test needs a long one"


@pytest.mark.parametrize("tokens", [0, MAX_NEW_TOKENS + 1, 10_000])
def test_a_generation_is_bounded(runtime: Runtime, tokens: int):
    with pytest.raises(UserInputError, match=f"between 1 and {MAX_NEW_TOKENS}"):
        runtime.generate("The cat", tokens)


def test_no_request_reads_more_than_the_request_limit(runtime: Runtime):
    ids, truncation = runtime.tokenize("word " * 5000, max_tokens=100_000)
    assert len(ids) == MAX_REQUEST_TOKENS and truncation is not None


def test_length_batches_put_each_text_in_one_batch_and_never_pad_past_the_budget():
    lengths = [5, 250, 6, 7, 120, 9, 256, 3, 130, 40]
    batches = length_batches(lengths, 256)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 256
    together = next(batch for batch in batches if 0 in batch)
    assert 1 not in together and 6 not in together  # a 5-token text is not padded to 250 or 256
    assert length_batches([], 256) == []


def test_embedding_in_length_batches_gives_the_numbers_of_one_text_at_a_time(runtime: Runtime):
    texts = ["Keys are computed.", "word " * 300, "What does softmax do to the scores of a head?",
             "A", "The values are mixed with the attention weights. " * 4, "Keys are computed."]
    together = runtime.embed(texts)
    alone = np.concatenate([runtime.embed([text]) for text in texts])
    # float32 sums over at most 1,536 terms in 6 layers, on unit vectors: differences stay far below 1e-5;
    # a text padded without its mask, or a vector put back in the wrong row, differs by more than 1e-2.
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_a_batch_of_many_texts_passes_in_slices_of_the_budget(runtime: Runtime):
    shapes = []
    handle = runtime.minilm.model.register_forward_pre_hook(
        lambda _module, _args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    try:
        runtime.embed(["Short text."] * 40 + ["word " * 400])
    finally:
        handle.remove()
    assert all(rows * length <= EMBED_BATCH_TOKENS for rows, length in shapes), shapes
    assert sum(rows for rows, _ in shapes) == 41
