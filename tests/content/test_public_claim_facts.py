"""Facts that the newest public claims state about the models, rebuilt on the real models: right padding
and a causal model, padding and an encoder without a mask, RMSNorm's length, and temperature's order.
Each claim's refutation says these things; if the models said otherwise, the bank would be wrong."""

from __future__ import annotations

import math

import torch

from kqv_demo import numerics
from kqv_demo.content.loader import load_bank
from kqv_demo.runtime import MINILM, SMOLLM2, Runtime

BANK = load_bank(dialogue=False)
PADS = 4
PROMPT = "The film was wonderful and the actors were superb"


def _claim(claim_id: str, verdict: str):
    claim = BANK.claims[claim_id]
    assert claim.verdict == verdict, f"{claim_id} is no longer {verdict}"
    return claim


def _causal_logits(runtime: Runtime, ids: list[int]) -> torch.Tensor:
    loaded = runtime.model(SMOLLM2)
    with loaded.passes, torch.inference_mode():  # no attention_mask: the model's own causal mask only
        return loaded.model(torch.tensor([ids])).logits[0]


def test_right_padding_without_a_mask_leaves_a_causal_models_real_tokens_unchanged(runtime: Runtime):
    _claim("causal-decoder-unaffected-by-right-padding", "true")
    loaded = runtime.model(SMOLLM2)
    ids = loaded.tokenizer(PROMPT)["input_ids"]
    pad = loaded.tokenizer.pad_token_id
    plain = _causal_logits(runtime, ids)
    right = _causal_logits(runtime, ids + [pad] * PADS)[: len(ids)]
    left = _causal_logits(runtime, [pad] * PADS + ids)[PADS:]
    # another sequence length is another kernel: within LOGIT_NOISE, measured on every CPU path
    assert float((right - plain).abs().max()) <= numerics.LOGIT_NOISE
    # the limit the claim states: padding on the left, unmasked, moves them far beyond any rounding
    assert float((left - plain).abs().max()) > 100 * numerics.LOGIT_NOISE


def _encoder_states(runtime: Runtime, ids: list[int], mask: list[int]) -> torch.Tensor:
    loaded = runtime.model(MINILM)
    with loaded.passes, torch.inference_mode():
        return loaded.model(input_ids=torch.tensor([ids]), attention_mask=torch.tensor([mask])).last_hidden_state[0]


def _largest_relative_change(states: torch.Tensor, reference: torch.Tensor) -> float:
    return float(((states - reference).norm(dim=-1) / reference.norm(dim=-1)).max())


def test_an_encoder_attends_to_padding_unless_it_is_masked(runtime: Runtime):
    _claim("attention-ignores-padding-without-a-mask", "false")
    tokenizer = runtime.model(MINILM).tokenizer
    ids = tokenizer(PROMPT)["input_ids"]
    padded = ids + [tokenizer.pad_token_id] * PADS
    plain = _encoder_states(runtime, ids, [1] * len(ids))
    unmasked = _encoder_states(runtime, padded, [1] * len(padded))[: len(ids)]
    masked = _encoder_states(runtime, padded, [1] * len(ids) + [0] * PADS)[: len(ids)]
    assert _largest_relative_change(masked, plain) <= numerics.STATE_NOISE
    assert _largest_relative_change(unmasked, plain) > 100 * numerics.STATE_NOISE


def test_rmsnorm_gives_length_sqrt_d_before_its_gain_and_not_after(runtime: Runtime):
    _claim("layer-norm-gives-every-token-the-same-length", "partly")
    layer = 15  # past the layers where the first token becomes an attention sink with a huge state
    trace = runtime.trace(PROMPT, names_filter=lambda name: name == f"blocks.{layer}.resid_pre")
    state = trace[f"blocks.{layer}.resid_pre"].double()  # [T, d_model]
    norm = runtime.model(SMOLLM2).model.model.layers[layer].input_layernorm
    d_model = state.shape[-1]
    standardised = state * torch.rsqrt(state.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
    lengths = standardised.norm(dim=-1)
    # exactly sqrt(d) but for epsilon, which is negligible next to every token's mean square here
    assert float((lengths / math.sqrt(d_model) - 1).abs().max()) < 1e-4
    with torch.inference_mode():
        after_gain = norm(trace[f"blocks.{layer}.resid_pre"]).norm(dim=-1)
    assert float(after_gain.max() / after_gain.min()) > 1.1   # the learned gain makes lengths differ again
    residual = state.norm(dim=-1)
    assert float(residual.max() / residual.min()) > 10  # and the residual stream is never normalised


def test_temperature_never_reorders_the_tokens(runtime: Runtime):
    _claim("temperature-keeps-the-token-ranking", "true")
    logits = runtime.trace("The capital of France is", names_filter=lambda name: False).logits[-1]
    order = torch.argsort(logits, descending=True)[:50]
    for temperature in (0.3, 0.7, 1.5, 3.0):
        probabilities = torch.softmax(logits / temperature, dim=-1)[order]
        # dividing by a positive number and exponentiating keep the order; rounding may at most make two
        # neighbours equal (a relative slack of a few float32 epsilons), never swap them by more
        assert bool((probabilities[1:] <= probabilities[:-1] * (1 + 8 * numerics.EPS)).all()), temperature
        assert int(probabilities.argmax()) == 0
