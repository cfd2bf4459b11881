"""Every numeric quiz answer is rebuilt here, and must match the bank's answer within its tolerance.

A numeric item's answer is either a fact about one of our models (SmolLM2-135M, MiniLM), rebuilt from
the loaded model itself (its config, its parameters' shapes, its distinct tensors, a real forward pass),
or plain arithmetic on the numbers its question states, rebuilt from those numbers. Exact integers
compare exactly. A float answer must also be the rebuilt value correctly rounded to the decimals the
answer shows, so that a loose tolerance cannot hide a wrongly rounded answer.

Where the model's numbers give the answer, the numbers the question and feedback quote about the
model are rebuilt too (`MODEL_PHRASES`): a question that says "30 layers" must be about a model with 30.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal

import pytest
import torch
from transformers import DynamicCache

from kqv_demo import hooks, numerics
from kqv_demo.content.loader import load_bank
from kqv_demo.content.schema import NumericItem
from kqv_demo.demos import DEMOS
from kqv_demo.runtime import MINILM, SMOLLM2, Runtime
from kqv_demo.trace import Trace

BANK = load_bank(dialogue=False)
NUMERIC = {claim_id: claim.quiz.numeric for claim_id, claim in BANK.claims.items() if claim.quiz.numeric}
WORDS = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen twenty").split()


# --- the model, read the way the questions describe it -------------------------------------------------


def layers(runtime: Runtime) -> torch.nn.ModuleList:
    return runtime.smollm2.model.model.layers


def in_every_layer(runtime: Runtime, measure: Callable[[torch.nn.Module], int]) -> int:
    """`measure` of a layer, which must be the same in all of them (a question says "one layer")."""
    values = {measure(layer) for layer in layers(runtime)}
    assert len(values) == 1, f"the layers differ: {sorted(values)}"
    return values.pop()


def parameters_of(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def counting_prompt(runtime: Runtime, n_tokens: int, model: str = SMOLLM2) -> str:
    """Counting words that make exactly `n_tokens` tokens for `model` (MiniLM's [CLS] and [SEP] included)."""
    for words in range(1, len(WORDS) + 1):
        prompt = " ".join(WORDS[:words])
        if len(runtime.tokenize(prompt, model)[0]) == n_tokens:
            return prompt
    raise AssertionError(f"no counting prompt has {n_tokens} {model} tokens")


_TRACES: dict[tuple[int, str], Trace] = {}


def traced(runtime: Runtime, n_tokens: int, model: str = SMOLLM2) -> Trace:
    """One real pass over an `n_tokens`-token prompt, recording every layer's q, k, scores and pattern."""
    key = (n_tokens, model)
    if key not in _TRACES:
        wanted = (".attn.q", ".attn.k", ".attn.rot_q", ".attn.rot_k", ".attn.scores_unmasked", ".attn.pattern")
        _TRACES[key] = runtime.trace(counting_prompt(runtime, n_tokens, model), model=model,
                                     names_filter=lambda name: name.endswith(wanted))
        assert _TRACES[key].n_tokens == n_tokens
    return _TRACES[key]


def vectors_per_pass(runtime: Runtime, n_tokens: int, point: str) -> int:
    """How many query (point "q") or key ("k") vectors a real pass over `n_tokens` tokens computes:
    heads × positions of the recorded tensor [heads, T, d_head], summed over the layers."""
    trace = traced(runtime, n_tokens)
    return sum(math.prod(trace[f"blocks.{layer}.attn.{point}"].shape[:2]) for layer in range(trace.model.n_layers))


def one_head_weights(runtime: Runtime, n_tokens: int, model: str = SMOLLM2) -> torch.Tensor:
    return traced(runtime, n_tokens, model)["blocks.0.attn.pattern"][0]  # layer 0, head 0: [T, T]


def masked_weights(runtime: Runtime, n_tokens: int) -> int:
    """Weights the causal mask set to exactly 0 (every unmasked weight here is above 1e-11, far from 0)."""
    return int((one_head_weights(runtime, n_tokens) == 0).sum())


def unmasked_weights(runtime: Runtime, n_tokens: int) -> int:
    return int((one_head_weights(runtime, n_tokens) != 0).sum())


def kv_cache_numbers_per_token(runtime: Runtime) -> int:
    """All numbers in SmolLM2's own KV cache after one pass over a prompt, divided by its tokens."""
    model = runtime.smollm2.model
    ids, _ = runtime.tokenize(counting_prompt(runtime, 6))
    kv_cache = DynamicCache(config=model.config)
    with runtime.smollm2.passes, torch.inference_mode(), hooks.recording(lambda name: False):
        model(torch.tensor([ids]), cache=kv_cache, use_cache=True, logits_to_keep=1)
    held = sum(layer.keys.numel() + layer.values.numel() for layer in kv_cache.layers)
    assert held % len(ids) == 0 and kv_cache.get_seq_length() == len(ids)
    return held // len(ids)


def hidden_states_returned(runtime: Runtime) -> int:
    model = runtime.smollm2.model
    ids, _ = runtime.tokenize(counting_prompt(runtime, 6))
    with runtime.smollm2.passes, torch.inference_mode(), hooks.recording(lambda name: False):
        output = model(torch.tensor([ids]), output_hidden_states=True, use_cache=False, logits_to_keep=1)
    return len(output.hidden_states)


def passes_to_generate(runtime: Runtime, prompt_tokens: int, new_tokens: int) -> int:
    """Forward passes SmolLM2 runs (each embeds its input once) while generating with its KV cache."""
    passes = 0

    def count(_module: torch.nn.Module, _args: tuple) -> None:
        nonlocal passes
        passes += 1

    handle = runtime.smollm2.model.model.embed_tokens.register_forward_pre_hook(count)
    try:
        _, _, steps = runtime.generate(counting_prompt(runtime, prompt_tokens), new_tokens)
    finally:
        handle.remove()
    assert len(steps) == new_tokens, "the generation stopped early (end of text): pick another prompt"
    return passes


def distinct_key_projections(runtime: Runtime) -> int:
    """Separate k_proj matrices SmolLM2 stores: distinct by storage AND by content (a BLAKE3 hash of the bytes)."""
    names = [name for name in runtime.parameter_shapes() if name.endswith("self_attn.k_proj.weight")]
    storages = {runtime.parameter(name).data_ptr() for name in names}
    hashes = runtime.parameter_hashes()
    contents = {hashes[name] for name in names}
    assert len(storages) == len(contents), "two layers hold the same bytes in separate tensors, or vice versa"
    return len(contents)


def weights_saved_by_tying(runtime: Runtime) -> int:
    """Parameters counted once per use minus parameters stored: what sharing one matrix saves."""
    model = runtime.smollm2.model
    per_use = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    return per_use - parameters_of(model)


def bias_parameters(model: torch.nn.Module) -> int:
    """Every bias a module of `model` holds (a linear layer's, a norm's), however it is named."""
    return sum(module.bias.numel() for module in model.modules() if getattr(module, "bias", None) is not None)


def kv_head_read_by(runtime: Runtime, query_head: int, layer: int = 3) -> int:
    """Which key/value head a query head's recorded scores come from: the one whose keys, dotted with this
    head's queries and scaled, give those scores (the others miss by far more than float32 rounding)."""
    trace = traced(runtime, 7)
    q, k = trace[f"blocks.{layer}.attn.rot_q"][query_head], trace[f"blocks.{layer}.attn.rot_k"]
    scores = trace[f"blocks.{layer}.attn.scores_unmasked"][query_head]
    misses = [float((q @ k[j].T / math.sqrt(q.shape[-1]) - scores).abs().max()) for j in range(k.shape[0])]
    best = min(range(len(misses)), key=misses.__getitem__)
    noise = max(numerics.matmul_noise(q, k[j].T) for j in range(k.shape[0])) / math.sqrt(q.shape[-1])
    assert misses[best] <= noise < min(m for j, m in enumerate(misses) if j != best)
    return best


def logit_lens_first_top(runtime: Runtime) -> int:
    """The first layer after which " Paris" is the logit lens's top token for the question's prompt; both
    sides of the decision are clear by more than the probabilities can move between CPUs."""
    lens = DEMOS["logit-lens"].run(runtime, prompt="The capital of France is", target=" Paris")
    first = next(layer for layer, token in enumerate(lens.top_tokens) if token == lens.target)
    before, at = first - 1, first
    assert lens.top_probs[before] - lens.p_target[before] > 2 * numerics.probability_noise(lens.top_probs[before])
    assert lens.top_probs[at] == lens.p_target[at] and lens.p_target[at] > 0.5 + numerics.probability_noise(0.5)
    return first


# Answers that are facts about our models, rebuilt from the loaded models.
FROM_MODEL: dict[str, Callable[[Runtime], float]] = {
    "attention-columns-sum-to-one": lambda rt: float(one_head_weights(rt, 6).double().sum()),
    "attention-maps-reveal-reasoning": lambda rt: sum(
        traced(rt, 6)[f"blocks.{layer}.attn.pattern"].shape[0] for layer in range(rt.smollm2.shape.n_layers)),
    "attention-output-is-weighted-sum-of-inputs": lambda rt: in_every_layer(
        rt, lambda layer: layer.self_attn.o_proj.in_features),
    "attention-weights-are-learned-parameters": lambda rt: one_head_weights(rt, 10).numel(),
    "bert-uses-left-and-right-context": lambda rt: unmasked_weights(rt, 7),
    "biases-switch-neurons-on-and-off": lambda rt: bias_parameters(rt.smollm2.model),
    "causal-mask-is-only-for-training": lambda rt: masked_weights(rt, 5),
    "each-head-attends-to-its-own-words": lambda rt: one_head_weights(rt, 10, MINILM).numel(),
    "every-head-has-its-own-keys-and-values": lambda rt: in_every_layer(
        rt, lambda layer: layer.self_attn.k_proj.out_features),
    "generation-is-one-token-per-forward-pass": lambda rt: passes_to_generate(rt, 20, 30),
    "heads-chain-query-to-next-head": lambda rt: kv_head_read_by(rt, 7),
    "keys-are-stored-concept-vectors": lambda rt: vectors_per_pass(rt, 12, "k"),
    "kv-cache-also-stores-queries": kv_cache_numbers_per_token,
    "kv-cache-speeds-up-training": lambda rt: traced(rt, 6)["blocks.0.attn.rot_k"][0].shape[0],
    "later-layers-barely-change-the-representation": logit_lens_first_top,
    "layer-count-is-a-hyperparameter": lambda rt: in_every_layer(rt, parameters_of),
    "layer-norm-normalizes-across-the-batch": lambda rt: in_every_layer(
        rt, lambda layer: layer.input_layernorm.weight.numel()),
    "most-models-use-twelve-layers": lambda rt: len(layers(rt)),
    "number-of-layers-is-decided-dynamically": hidden_states_returned,
    "output-layer-is-unrelated-to-embeddings": weights_saved_by_tying,
    "prompt-encoded-as-one-query-vector": lambda rt: vectors_per_pass(rt, 7, "q"),
    "queries-and-keys-are-probability-distributions": lambda rt: one_head_weights(rt, 12)[-1].numel(),
    "rope-is-added-once-to-the-embeddings": lambda rt: rt.smollm2.model.model.rotary_emb.inv_freq.numel(),
    "stacked-layers-share-weights": distinct_key_projections,
    "transformers-are-built-on-self-attention": lambda rt: in_every_layer(
        rt, lambda layer: parameters_of(layer.self_attn)),
}


def softmax_first(*scores: float) -> float:
    return math.exp(scores[0]) / sum(math.exp(s) for s in scores)


def kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q))


Q, K = [0.3, 0.5, 0.2], [0.2, 0.4, 0.4]  # the dialogue's example distributions, as the questions state them

# Answers that are arithmetic on the numbers their question states, rebuilt from those numbers.
FROM_QUESTION: dict[str, Callable[[], float]] = {
    "attention-cost-grows-linearly-with-length": lambda: sum(range(1, 1000 + 1)),
    "attention-cost-is-quadratic-in-length": lambda: 512 * 512,
    "attention-scores-divided-by-d-k": lambda: math.sqrt(64),  # Var(q·k) = d_k for unit-variance components
    "attention-was-invented-by-the-transformer-paper": lambda: 2017 - 2014,
    "attention-weights-combine-key-vectors": lambda: sum(a * v for a, v in zip([0.5, 0.3, 0.2], [2, -1, 4])),
    "bert-outputs-contextual-embeddings": lambda: 200 * 0.15 * 0.80,
    "best-matching-keys-get-activated": lambda: softmax_first(0, 2, 1),
    "bigger-models-are-always-more-accurate": lambda: 280 / 70,
    "cross-attention-queries-come-from-encoder": lambda: 4 * 7,
    "dot-product-against-internal-keys": lambda: sum(a * b for a, b in zip([1, 2, 0, -1], [2, 0, 1, 3])) / math.sqrt(4),
    "dot-product-score-measures-meaning-similarity": lambda: 2 * 5 * math.cos(math.radians(60)),
    "emergent-abilities-switch-on-at-a-fixed-size": lambda: 0.8**10,
    "key-value-store-writes-go-to-all-replicas": lambda: min(r for r in range(1, 5 + 1) if 3 + r > 5),
    "kl-divergence-is-a-plain-average-of-log-ratios": lambda: sum(math.log(q / k) for q, k in zip(Q, K)) / 3,
    "kl-divergence-measures-difference-between-distributions": lambda: kl(K, Q),
    "llms-cannot-report-confidence-scores": lambda: -sum(p * math.log2(p) for p in [0.7, 0.2, 0.1]),
    "logits-are-probabilities": lambda: softmax_first(2, 1, 0),
    "masking-sets-scores-to-zero": lambda: softmax_first(0, 2, 1),
    "more-heads-means-more-parameters": lambda: 4 * 512 * (8 * (512 // 8)),  # 4 × d_model × (h · d_k)
    "positional-encoding-is-concatenated": lambda: 512,  # adding two 512-vectors keeps 512 dimensions
    "prompting-for-ranked-answers-by-probability": lambda: math.log(0.5) + math.log(0.8),
    "queries-and-keys-are-not-compared-one-to-one": lambda: sum(range(1, 10 + 1)),
    "raw-attention-scores-are-probabilities": lambda: softmax_first(2, 0, -1),
    "rope-rotates-queries-and-keys": lambda: 4 - 9,
    "softmax-ignores-a-constant-shift-of-scores": lambda: softmax_first(3, 1, 1),
    "softmax-turns-scores-into-attention-distribution": lambda: softmax_first(2, 1, 0),
    "sqrt-dk-scaling-is-unnecessary": lambda: softmax_first(2 / 2, 0 / 2),
    "temperature-zero-gives-the-true-answer": lambda: softmax_first(2 / 0.5, 1 / 0.5),
    "token-probability-is-the-chance-of-being-right": lambda: 150 / 200,
    "training-loss-uses-only-the-last-token": lambda: 1024 - 1,
    "worked-kl-example-gives-0-135": lambda: kl(Q, K),
}


def assert_matches(item: NumericItem, rebuilt: float) -> None:
    if float(rebuilt).is_integer() and item.answer.is_integer():
        assert int(rebuilt) == int(item.answer), f"the answer is {item.answer:g}, rebuilt {rebuilt:g}"
        return
    assert abs(rebuilt - item.answer) <= item.tolerance, (
        f"the answer {item.answer} is not within ±{item.tolerance} of {rebuilt}")
    decimals = max(0, -Decimal(repr(item.answer)).as_tuple().exponent)
    assert round(rebuilt, decimals) == item.answer, f"{rebuilt} rounded to {decimals} decimals is not {item.answer}"


@pytest.mark.parametrize("claim_id", sorted(FROM_MODEL))
def test_model_answer_is_what_the_model_gives(claim_id: str, runtime: Runtime):
    assert_matches(NUMERIC[claim_id], FROM_MODEL[claim_id](runtime))


@pytest.mark.parametrize("claim_id", sorted(FROM_QUESTION))
def test_arithmetic_answer_follows_from_the_question(claim_id: str):
    assert_matches(NUMERIC[claim_id], FROM_QUESTION[claim_id]())


def test_every_numeric_answer_is_rebuilt():
    assert not set(FROM_MODEL) & set(FROM_QUESTION), "an answer is rebuilt twice"
    rebuilt = set(FROM_MODEL) | set(FROM_QUESTION)
    assert set(NUMERIC) - rebuilt == set(), "numeric items whose answer no rebuild covers"
    assert rebuilt - set(NUMERIC) == set(), "rebuilds for claims that have no numeric item (any more)"


# --- what the questions and feedback say about the model ----------------------------------------------


def config(runtime: Runtime):
    return runtime.smollm2.model.config


def grouped(n: int) -> str:
    return f"{n:,}"


def first_layer_shape(runtime: Runtime, module: str) -> str:
    out_features, in_features = layers(runtime)[0].get_submodule(module).weight.shape
    return f"{in_features}×{out_features}"


def layer_lens(runtime: Runtime) -> str:
    lens = DEMOS["logit-lens"].run(runtime, prompt="The capital of France is", target=" Paris")
    shown = [(lens.p_target[28], 3), (lens.p_target[29], 3), (lens.p_target[30], 2)]
    for value, decimals in shown:  # a quoted probability must not sit on a rounding point
        assert numerics.rounding_margin(value, decimals) > numerics.probability_noise(value)
    (p28, _), (p29, _), (p30, _) = shown
    return f"its probability is {p28:.3f} at layer 28, {p29:.3f} at layer 29 and {p30:.2f} at layer 30"


# Phrases of a model item's question or feedback that quote the model, built from the model.
MODEL_PHRASES: dict[str, Callable[[Runtime], list[str]]] = {
    "attention-maps-reveal-reasoning": lambda rt: [
        f"{config(rt).num_hidden_layers} layers with {config(rt).num_attention_heads} query heads each"],
    "attention-output-is-weighted-sum-of-inputs": lambda rt: [
        f"{config(rt).num_attention_heads} query heads of size {config(rt).head_dim}",
        f"{config(rt).num_attention_heads} × {config(rt).head_dim} = {config(rt).hidden_size}, "
        "the model's hidden size"],
    "biases-switch-neurons-on-and-off": lambda rt: [
        f"attention_bias = {str(config(rt).attention_bias).lower()}, mlp_bias = {str(config(rt).mlp_bias).lower()}",
        f"MiniLM, by contrast, has {sum(1 for name, _ in rt.minilm.model.named_parameters() if name.endswith('bias'))} "
        "bias vectors"],
    "every-head-has-its-own-keys-and-values": lambda rt: [
        f"{config(rt).num_key_value_heads} key/value heads of {config(rt).head_dim} dimensions",
        f"the {layers(rt)[0].self_attn.q_proj.out_features} numbers the query projection outputs for the "
        f"{config(rt).num_attention_heads} query heads"],
    "heads-chain-query-to-next-head": lambda rt: [
        f"{config(rt).num_attention_heads} query heads sharing {config(rt).num_key_value_heads} key/value heads",
        f"h // {config(rt).num_attention_heads // config(rt).num_key_value_heads}"],
    "keys-are-stored-concept-vectors": lambda rt: [
        f"{config(rt).num_hidden_layers} layers and {config(rt).num_key_value_heads} key/value heads per layer"],
    "kv-cache-also-stores-queries": lambda rt: [
        f"{config(rt).num_hidden_layers} layers, {config(rt).num_key_value_heads} key/value heads per layer and "
        f"head dimension {config(rt).head_dim}",
        f"{config(rt).num_attention_heads} query heads"],
    "later-layers-barely-change-the-representation": lambda rt: [layer_lens(rt)],
    "layer-count-is-a-hyperparameter": lambda rt: [
        f"hidden {config(rt).hidden_size}",
        f"q_proj and o_proj {first_layer_shape(rt, 'self_attn.q_proj')}",
        f"k_proj and v_proj {first_layer_shape(rt, 'self_attn.k_proj')}",
        f"three MLP matrices {first_layer_shape(rt, 'mlp.gate_proj')}",
        f"two norm vectors of {layers(rt)[0].post_attention_layernorm.weight.numel()}",
        f"Times {len(layers(rt))} layers that is about {round(len(layers(rt)) * parameters_of(layers(rt)[0]) / 1e6)} M",
        f"the {rt.smollm2.model.model.embed_tokens.weight.numel() / 1e6:.1f} M embedding matrix"],
    "layer-norm-normalizes-across-the-batch": lambda rt: [f"{config(rt).hidden_size} numbers per token"],
    "most-models-use-twelve-layers": lambda rt: [f"width ({config(rt).hidden_size})"],
    "number-of-layers-is-decided-dynamically": lambda rt: [
        f"{config(rt).num_hidden_layers} layers", f"each of the {config(rt).num_hidden_layers} layers"],
    "output-layer-is-unrelated-to-embeddings": lambda rt: [
        f"V = {grouped(config(rt).vocab_size)} tokens, d = {config(rt).hidden_size}"],
    "prompt-encoded-as-one-query-vector": lambda rt: [
        f"{config(rt).num_hidden_layers} layers with {config(rt).num_attention_heads} query heads each",
        f"query vectors of {config(rt).head_dim} numbers each"],
    "queries-and-keys-are-probability-distributions": lambda rt: [
        f"its query, by contrast, always has {config(rt).head_dim} entries"],
    "rope-is-added-once-to-the-embeddings": lambda rt: [f"{config(rt).head_dim}-dimensional SmolLM2 query"],
    "stacked-layers-share-weights": lambda rt: [f"{config(rt).num_hidden_layers} layers that share no weights"],
    "transformers-are-built-on-self-attention": lambda rt: [
        f"hidden size {config(rt).hidden_size}, {config(rt).num_attention_heads} query heads and "
        f"{config(rt).num_key_value_heads} key/value heads of size {config(rt).head_dim}",
        f"only {config(rt).num_key_value_heads}×{config(rt).head_dim} = "
        f"{layers(rt)[0].self_attn.k_proj.out_features} key/value dimensions",
        f"3·{config(rt).hidden_size}·{config(rt).intermediate_size} = {grouped(parameters_of(layers(rt)[0].mlp))}"],
}


@pytest.mark.parametrize("claim_id", sorted(MODEL_PHRASES))
def test_what_the_item_says_about_the_model_is_the_model(claim_id: str, runtime: Runtime):
    item = NUMERIC[claim_id]
    text = " ".join(f"{item.question} {item.feedback}".split()).lower()
    for phrase in MODEL_PHRASES[claim_id](runtime):
        assert phrase.lower() in text, f"{claim_id} should say: {phrase}"


def test_model_phrases_are_for_model_items():
    assert set(MODEL_PHRASES) <= set(FROM_MODEL)
