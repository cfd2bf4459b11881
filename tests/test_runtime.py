"""The runtime: both models from their packages, one entry point for traces, limits and concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from kqv_demo import numerics, settings
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import MINILM, SMOLLM2, Runtime, shared_runtime


def test_one_runtime_per_process(runtime: Runtime):
    assert shared_runtime() is runtime


def test_model_shapes_come_from_the_configs(runtime: Runtime):
    smollm2 = runtime.smollm2.model.config
    assert runtime.smollm2.shape.n_layers == smollm2.num_hidden_layers == len(runtime.smollm2.model.model.layers)
    assert runtime.smollm2.shape.n_kv_heads == smollm2.num_key_value_heads < smollm2.num_attention_heads
    assert runtime.smollm2.shape.causal and not runtime.minilm.shape.causal
    assert type(runtime.smollm2.model).__name__ == "LlamaForCausalLM"
    assert type(runtime.minilm.model).__name__ == "BertModel"


def test_trace_records_every_block_with_the_documented_shapes(runtime: Runtime):
    trace = runtime.trace("The cat sat on the mat")
    shape, t = trace.model, trace.n_tokens
    assert trace.tokens == ["The", " cat", " sat", " on", " the", " mat"]
    for layer in range(shape.n_layers):
        assert trace[f"blocks.{layer}.attn.rot_q"].shape == (shape.n_heads, t, shape.d_head)
        assert trace[f"blocks.{layer}.attn.rot_k"].shape == (shape.n_kv_heads, t, shape.d_head)
        assert trace[f"blocks.{layer}.attn.v"].shape == (shape.n_kv_heads, t, shape.d_head)
        assert trace[f"blocks.{layer}.attn.pattern"].shape == (shape.n_heads, t, t)
        assert trace[f"blocks.{layer}.attn.z"].shape == (t, shape.n_heads, shape.d_head)
        assert trace[f"blocks.{layer}.resid_post"].shape == (t, shape.d_model)
    assert trace.logits.shape == (1, runtime.smollm2.model.config.vocab_size)


def test_the_model_answers_a_plain_fact(runtime: Runtime):
    trace = runtime.trace("The capital of France is", names_filter=lambda name: False)
    top = int(trace.logits[-1].argmax())
    assert runtime.smollm2.tokenizer.decode([top]) == " Paris"


def test_long_prompts_are_cut_with_a_notice(runtime: Runtime):
    prompt = "attention " * 400
    full_length = len(runtime.smollm2.tokenizer(prompt)["input_ids"])
    trace = runtime.trace(prompt, names_filter=lambda name: name == "blocks.0.attn.pattern")
    assert full_length > settings.MAX_PROMPT_TOKENS
    assert trace.n_tokens == settings.MAX_PROMPT_TOKENS
    assert trace.truncation is not None
    assert trace.truncation.original_tokens == full_length
    assert f"first {settings.MAX_PROMPT_TOKENS}" in trace.truncation.message
    assert runtime.trace("short prompt").truncation is None


def test_minilm_keeps_its_end_token_when_cut(runtime: Runtime):
    ids, truncation = runtime.tokenize("word " * 400, model=MINILM, max_tokens=16)
    assert len(ids) == 16 and truncation is not None
    assert ids[-1] == runtime.minilm.tokenizer.sep_token_id


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_empty_prompts_get_a_clear_message(runtime: Runtime, prompt: str):
    with pytest.raises(UserInputError, match="empty"):
        runtime.trace(prompt)


def test_sentence_embeddings_are_normalised_and_meaningful(runtime: Runtime):
    vectors = runtime.embed([
        "Attention weights come from a softmax over dot products.",
        "The softmax of scaled dot products gives the attention weights.",
        "My favourite recipe uses three eggs and flour.",
    ])
    assert vectors.shape == (3, runtime.minilm.shape.d_model)
    # unit length up to the float32 rounding of two sums of d squares (normalising, and measuring here)
    assert (np.abs(np.linalg.norm(vectors, axis=1) - 1) <= numerics.sum_noise(vectors.shape[1], 1.0)).all()
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_concurrent_traces_give_the_same_numbers_as_serial_ones(runtime: Runtime):
    prompts = ["The cat sat on the mat", "Queries meet keys", "Values carry content", "Depth is fixed"]
    serial = {p: runtime.trace(p)["blocks.7.attn.pattern"] for p in prompts}
    results: dict[str, torch.Tensor] = {}
    errors: list[BaseException] = []

    def work(prompt: str) -> None:
        try:
            results[prompt] = runtime.trace(prompt)["blocks.7.attn.pattern"]
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(p,)) for p in prompts * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for prompt in prompts:
        assert torch.equal(results[prompt], serial[prompt])


def test_greedy_chat_generation_answers_and_grows_the_cache_by_one_per_token(runtime: Runtime):
    ids, truncation, steps = runtime.generate(runtime.chat_prompt("What is the capital of France?"), 12)
    text = "".join(step.token for step in steps)
    assert text.startswith("The capital of France is Paris.")
    assert [step.cache_length for step in steps] == list(range(len(ids), len(ids) + len(steps)))
    assert steps[-1].token_id == runtime.smollm2.tokenizer.eos_token_id
    assert truncation is None


def test_a_side_branch_in_the_first_pass_changes_nothing_in_the_generation(runtime: Runtime):
    chat = runtime.chat_prompt("What is the capital of France?")
    branch = runtime.smollm2.tokenizer.encode("The capital of Australia is", add_special_tokens=False)
    recorded = lambda name: name.startswith("blocks.4.")  # noqa: E731
    ids, _, plain = runtime.generate(chat, 4, names_filter=recorded)
    _, _, with_branch = runtime.generate(chat, 4, names_filter=recorded, side_branch=branch)
    assert [s.token_id for s in with_branch] == [s.token_id for s in plain]
    assert ([s.cache_length for s in with_branch] == [s.cache_length for s in plain]
            == list(range(len(ids), len(ids) + 4)))
    for ours, theirs in zip(with_branch, plain):
        assert ours.activations.keys() == theirs.activations.keys()
        for name, tensor in ours.activations.items():
            assert tensor.shape == theirs.activations[name].shape, name
            assert _within_pass_noise(name, tensor, theirs.activations[name]), name
    assert plain[0].side_logits is None and all(s.side_logits is None for s in with_branch[1:])
    side = with_branch[0].side_logits
    assert side.shape == (len(branch), runtime.smollm2.model.config.vocab_size)
    # Row k is the next-token distribution after the chat and the branch's first k + 1 tokens, as in a pass of its own.
    alone = runtime.trace(chat + "The capital of Australia is", all_logits=True)
    assert float((side - alone.logits[len(ids):]).abs().max()) <= numerics.LOGIT_NOISE


def test_the_hashes_taken_at_load_are_those_of_the_weights_as_loaded(runtime: Runtime):
    assert runtime.hashes_at_load() == runtime.parameter_hashes()
    assert len(runtime.hashes_at_load()) == len(list(runtime.smollm2.model.parameters()))


def test_sampling_is_reproducible_by_seed(runtime: Runtime):
    first = runtime.generate("Once upon a time", 6, temperature=1.0, seed=3)[2]
    again = runtime.generate("Once upon a time", 6, temperature=1.0, seed=3)[2]
    assert [s.token_id for s in first] == [s.token_id for s in again]


def test_parameter_digest_is_stable_and_sensitive(runtime: Runtime):
    before = runtime.parameter_digest()
    assert runtime.parameter_digest() == before and len(before) == 64
    weight = runtime.smollm2.model.model.norm.weight
    original = weight[0].item()
    with torch.no_grad():
        weight[0] = original + 1.0
        try:
            assert runtime.parameter_digest() != before
        finally:
            weight[0] = original
    assert runtime.parameter_digest() == before


@pytest.mark.parametrize("bit", [0, 1, 22, 23, 31])  # lowest mantissa bit ... sign bit
def test_a_single_flipped_bit_in_any_weight_changes_that_tensors_hash(runtime: Runtime, bit: int):
    before = runtime.parameter_hashes()
    name = "model.layers.17.mlp.down_proj.weight"
    words = runtime.smollm2.model.get_parameter(name).data.view(-1).view(torch.int32)
    index = words.numel() // 3
    original = int(words[index])
    flipped = (original & 0xFFFFFFFF) ^ (1 << bit)
    words[index] = flipped - (1 << 32) if flipped >= 1 << 31 else flipped
    try:
        after = runtime.parameter_hashes()
    finally:
        words[index] = original
    assert [n for n in before if before[n] != after[n]] == [name]
    assert runtime.parameter_hashes() == before


def _within_pass_noise(name: str, ours: torch.Tensor, theirs: torch.Tensor) -> bool:
    """Two passes over the same tokens with other shapes (packed, branched) use other kernel blockings, so they
    agree only up to rounding (kqv_demo.numerics): attention weights like probabilities (their scores move by
    at most LOGIT_NOISE), every other recorded tensor by STATE_NOISE of its size."""
    difference = (ours - theirs).abs().double().numpy()
    if name.endswith(".pattern"):
        return bool((difference <= numerics.weight_noise(theirs.double().numpy(), theirs.shape[-1])).all())
    return float(difference.max()) <= numerics.STATE_NOISE * (float(theirs.abs().max()) or 1.0)


def test_a_packed_pass_gives_each_prompt_its_own_trace_as_if_run_alone(runtime: Runtime):
    short, long = "The bank was", "The capital of France is Paris, and the capital of Italy is"
    alone = [runtime.trace(prompt, all_logits=True) for prompt in (short, long)]
    batched = runtime.trace_batch([short, long], all_logits=True)
    for single, row in zip(alone, batched):
        assert row.token_ids == single.token_ids and row.tokens == single.tokens
        assert set(row.activations) == set(single.activations)
        for name, tensor in single.activations.items():
            assert row[name].shape == tensor.shape, name  # the padding is not part of any trace
            assert _within_pass_noise(name, row[name], tensor), name
        # README: packed passes agree with single ones within 1e-3 in the logits
        assert float((row.logits - single.logits).abs().max()) <= numerics.LOGIT_NOISE
        assert row.logits.argmax(-1).tolist() == single.logits.argmax(-1).tolist()
        top_two = single.logits.topk(2, dim=-1).values
        assert bool((top_two[:, 0] - top_two[:, 1] > 2 * numerics.LOGIT_NOISE).all()), \
            "no near-tie: same argmax on any CPU"
    weights = runtime.trace_batch([short, long], names_filter=lambda name: name == "blocks.3.attn.pattern")
    assert [t["blocks.3.attn.pattern"].shape[-1] for t in weights] == [len(alone[0].token_ids), len(alone[1].token_ids)]
    for t in weights:  # no weight leaks out: every row sums to 1, up to the softmax's rounding
        pattern = t["blocks.3.attn.pattern"]
        assert float((pattern.sum(-1) - 1).abs().max()) <= numerics.sums_to_one_noise(pattern.shape[-1])
    last_only = runtime.trace_batch([short, long])
    assert [t.logits.shape[0] for t in last_only] == [1, 1]
    assert float((last_only[0].logits[0] - alone[0].logits[-1]).abs().max()) <= numerics.LOGIT_NOISE


def test_batched_interventions_apply_to_their_own_prompt_only(runtime: Runtime):
    prompt = "The capital of France is"
    skip = {"blocks.20.resid_post": lambda output, block_input: block_input}
    full, skipped = runtime.trace_batch([prompt, prompt], interventions=[None, skip])
    alone = runtime.trace(prompt, interventions=skip)
    assert float((skipped.logits - alone.logits).abs().max()) <= numerics.LOGIT_NOISE
    assert float((full.logits - skipped.logits).abs().max()) > 10 * numerics.LOGIT_NOISE  # clearly not rounding


def test_branches_of_one_context_score_as_if_each_were_run_alone(runtime: Runtime):
    context = "The capital of France is"
    context_ids = runtime.tokenize(context)[0]
    endings = [" Paris", " Marseille", " a beautiful city"]
    branches = [runtime.tokenize(context + ending)[0][len(context_ids):] for ending in endings]
    after_context, per_branch = runtime.branch_logits(context_ids, branches)
    assert float((after_context - runtime.trace(context).logits[-1]).abs().max()) <= numerics.LOGIT_NOISE
    for ending, branch, logits in zip(endings, branches, per_branch):
        alone = runtime.trace(context + ending, all_logits=True).logits[len(context_ids) - 1 : -1]
        assert logits.shape == alone.shape == (len(branch), alone.shape[-1])
        assert float((logits - alone).abs().max()) <= numerics.LOGIT_NOISE, ending  # no branch sees another


def test_running_on_from_a_block_is_the_rest_of_the_forward_pass(runtime: Runtime):
    prompt = "The capital of France is"
    full = runtime.trace(prompt, names_filter=lambda name: name.endswith("resid_pre"))
    # Exact on every CPU: the same blocks run on the same hidden states with the same shapes and kernels.
    for block in (0, 12, 29):
        assert torch.equal(runtime.logits_from_block(full[f"blocks.{block}.resid_pre"], block), full.logits[-1])
    skipped = runtime.trace(prompt, interventions={"blocks.15.resid_post": lambda output, block_input: block_input})
    assert torch.equal(runtime.logits_from_block(full["blocks.15.resid_pre"], 16), skipped.logits[-1])


PRELOAD_SCRIPT = """
import json, time
from kqv_demo import runtime
assert not runtime.is_loaded()
loader = runtime.preload_in_background()
assert runtime.preload_in_background() is loader, "one loader per process"
seen = []
while loader.is_alive():
    seen.append(runtime.load_progress())
    loader.join(0.01)
print(json.dumps({"loaded": runtime.is_loaded(), "seen": seen, "last": runtime.load_progress(),
                  "same": runtime.shared_runtime() is runtime.shared_runtime()}))
"""


@pytest.mark.slow  # a subprocess that loads the models
def test_preloading_in_the_background_reports_progress_and_loads_once():
    done = subprocess.run([sys.executable, "-c", PRELOAD_SCRIPT], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] and report["same"]
    assert report["last"] == ["Models ready", 1.0]
    fractions = [fraction for _, fraction in report["seen"]]
    assert fractions == sorted(fractions), "progress never goes backwards"


RETRY_SCRIPT = """
import json
import os
from kqv_demo import runtime
real, calls = runtime.load_runtime, []

def flaky(*args, **kwargs):
    calls.append(1)
    if len(calls) == 1:
        raise RuntimeError("disk on fire")
    return real(*args, **kwargs)

runtime.load_runtime = flaky
first = runtime.preload_in_background()
first.join()
failed = {"loaded": runtime.is_loaded(), "error": str(runtime.load_error())}
second = runtime.preload_in_background()
second.join()
print(json.dumps({"failed": failed, "new_thread": second is not first, "loaded": runtime.is_loaded(),
                  "error": runtime.load_error() is None, "calls": len(calls)}))
"""


@pytest.mark.slow  # a subprocess that loads the models
def test_a_failed_background_load_is_kept_and_the_next_call_tries_again():
    done = subprocess.run([sys.executable, "-c", RETRY_SCRIPT], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["failed"] == {"loaded": False, "error": "disk on fire"}
    assert "disk on fire" in done.stderr, "the failure is logged"
    assert report["new_thread"] and report["loaded"] and report["error"] and report["calls"] == 2


def test_threads_started_after_the_chat_used_one_thread_get_the_full_count_again(runtime: Runtime):
    from concurrent.futures import ThreadPoolExecutor

    from kqv_demo.runtime import one_thread

    def small_pass(_: int) -> None:
        with one_thread():
            torch.ones(4).sum()

    with ThreadPoolExecutor(max_workers=4) as pool:  # windows overlap, so some workers start with 1
        list(pool.map(small_pass, range(16)))
    counts: list[int] = []
    later = threading.Thread(target=lambda: counts.append(torch.get_num_threads()))
    later.start()
    later.join()
    assert counts == [max(1, os.cpu_count() or 1)]


@pytest.mark.parametrize("name", [SMOLLM2, MINILM])
def test_a_models_shape_states_the_facts_of_its_config(runtime: Runtime, name: str):
    # what demos read instead of a Hugging Face config: compared here with the config itself
    config = runtime.model(name).model.config
    shape = runtime.shape(name)
    assert (shape.n_layers, shape.n_heads, shape.d_model, shape.vocab_size, shape.max_positions) == (
        config.num_hidden_layers, config.num_attention_heads, config.hidden_size, config.vocab_size,
        config.max_position_embeddings)
    if name == SMOLLM2:
        assert (shape.norm_eps, shape.tied_embeddings, shape.attention_bias, shape.mlp_bias, shape.rotary) == (
            config.rms_norm_eps, True, False, False, True)
        assert (shape.n_kv_heads, shape.d_head) == (config.num_key_value_heads, config.head_dim)
    else:
        assert (shape.norm_eps, shape.attention_bias, shape.mlp_bias, shape.rotary) == (
            config.layer_norm_eps, True, True, False)
        assert "encoder.layer.0.attention.self.query.bias" in runtime.parameter_shapes(MINILM)


def test_tokens_and_text_go_through_the_runtime(runtime: Runtime):
    text = "The cat sat on the mat."
    ids = runtime.encode(text)
    assert ids == runtime.tokenize(text)[0] and runtime.decode(ids) == text
    assert "".join(runtime.token_texts(ids)) == text and len(runtime.token_texts(ids)) == len(ids)
    same_ids, offsets = runtime.encode_with_offsets(text)
    assert same_ids == ids and [text[start:end] for start, end in offsets][:2] == ["The", " cat"]
    tokenizer = runtime.smollm2.tokenizer
    assert runtime.end_of_text_id() == tokenizer.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    minilm_ids = runtime.tokenize(text, MINILM)[0]  # [CLS] ... [SEP]
    assert {minilm_ids[0], minilm_ids[-1]} <= runtime.special_ids(MINILM)
    assert not set(minilm_ids[1:-1]) & runtime.special_ids(MINILM)
