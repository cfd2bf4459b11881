"""The hook points record what their names say, and recording changes nothing in the model."""

from __future__ import annotations

import pytest
import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from kqv_demo.runtime import Runtime, load_smollm2

PROMPT = "Keys are computed from each token's hidden state, not looked up."


@pytest.fixture(scope="module")
def trace(runtime: Runtime):
    return runtime.trace(PROMPT, all_logits=True)


def test_recording_attention_equals_the_stock_eager_attention(runtime: Runtime):
    ids = torch.tensor([runtime.tokenize(PROMPT)[0]])
    fresh = load_smollm2().model  # a second copy, switched back to transformers' own eager
    fresh.set_attn_implementation("eager")
    with torch.inference_mode():
        stock = fresh(ids, output_attentions=True)
        hooked = runtime.smollm2.model(ids, output_attentions=True)
    assert len(stock.attentions) == runtime.smollm2.shape.n_layers
    for ours, theirs in zip(hooked.attentions, stock.attentions, strict=True):
        assert torch.equal(ours, theirs)
    assert torch.equal(hooked.logits, stock.logits)


@pytest.mark.parametrize("layer", [0, 11, 29])
def test_q_and_k_are_the_projections_of_the_block_input_after_rope(runtime: Runtime, trace, layer: int):
    block = runtime.smollm2.model.model.layers[layer]
    shape = runtime.smollm2.shape
    with torch.inference_mode():
        normed = block.input_layernorm(trace[f"blocks.{layer}.resid_pre"])
        q = block.self_attn.q_proj(normed).view(trace.n_tokens, shape.n_heads, shape.d_head).transpose(0, 1)
        k = block.self_attn.k_proj(normed).view(trace.n_tokens, shape.n_kv_heads, shape.d_head).transpose(0, 1)
        v = block.self_attn.v_proj(normed).view(trace.n_tokens, shape.n_kv_heads, shape.d_head).transpose(0, 1)
        positions = torch.arange(trace.n_tokens)[None]
        cos, sin = runtime.smollm2.model.model.rotary_emb(normed[None], positions)
        q_rope, k_rope = apply_rotary_pos_emb(q[None], k[None], cos, sin)
    torch.testing.assert_close(trace[f"blocks.{layer}.attn.q"], q_rope[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(trace[f"blocks.{layer}.attn.k"], k_rope[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(trace[f"blocks.{layer}.attn.v"], v, rtol=0, atol=1e-5)
    assert not torch.allclose(q_rope[0], q), "RoPE must have rotated the queries"


def test_head_outputs_are_weights_times_values(runtime: Runtime, trace):
    shape = runtime.smollm2.shape
    group = shape.n_heads // shape.n_kv_heads
    for layer in (2, 20):
        pattern = trace[f"blocks.{layer}.attn.pattern"]  # [H, T, T]
        values = trace[f"blocks.{layer}.attn.v"].repeat_interleave(group, dim=0)  # [H, T, d]
        expected = (pattern @ values).transpose(0, 1)  # [T, H, d]
        torch.testing.assert_close(trace[f"blocks.{layer}.attn.out"], expected, rtol=0, atol=1e-5)


def test_scores_are_scaled_dot_products_before_the_mask(runtime: Runtime, trace):
    q = trace["blocks.4.attn.q"][0]
    k = trace["blocks.4.attn.k"][0]
    scores = trace["blocks.4.attn.scores"][0]
    torch.testing.assert_close(scores, q @ k.T / runtime.smollm2.shape.d_head**0.5, rtol=0, atol=1e-5)
    assert torch.isfinite(scores).all(), "scores are recorded before the causal mask"


def test_residual_stream_chains_and_the_final_norm_feeds_the_lm_head(runtime: Runtime, trace):
    layers = runtime.smollm2.shape.n_layers
    for layer in range(layers - 1):
        assert torch.equal(trace[f"blocks.{layer}.resid_post"], trace[f"blocks.{layer + 1}.resid_pre"])
    with torch.inference_mode():
        expected_final = runtime.smollm2.model.model.norm(trace[f"blocks.{layers - 1}.resid_post"])
        logits = runtime.smollm2.model.lm_head(trace["ln_final.out"])
    torch.testing.assert_close(trace["ln_final.out"], expected_final, rtol=0, atol=1e-5)
    torch.testing.assert_close(logits, trace.logits, rtol=0, atol=1e-4)


def test_names_filter_records_only_what_is_asked(runtime: Runtime):
    trace = runtime.trace(PROMPT, names_filter=lambda name: name.startswith("blocks.3.attn."))
    assert set(trace.activations) == {
        f"blocks.3.attn.{n}" for n in ("q", "k", "k_unrotated", "v", "scores", "pattern", "out", "result")
    }
    assert trace.calls["blocks.4.attn.pattern"] == 1, "hooks fire (and are counted) even when not recorded"
    with pytest.raises(KeyError, match="was not recorded"):
        trace["blocks.4.attn.q"]


def test_outside_a_trace_nothing_is_recorded(runtime: Runtime):
    from kqv_demo import hooks

    with hooks.recording() as recorder:
        pass
    with torch.inference_mode():
        runtime.smollm2.model(torch.tensor([[504, 2644]]))
    assert recorder.activations == {}


def test_attention_result_and_mlp_are_what_each_sublayer_adds(runtime: Runtime, trace):
    for layer in (1, 16):
        block = runtime.smollm2.model.model.layers[layer]
        with torch.inference_mode():
            heads = trace[f"blocks.{layer}.attn.out"].reshape(trace.n_tokens, -1)
            result = block.self_attn.o_proj(heads)
            middle = trace[f"blocks.{layer}.resid_pre"] + trace[f"blocks.{layer}.attn.result"]
            mlp = block.mlp.down_proj(trace[f"blocks.{layer}.mlp.post"])
        torch.testing.assert_close(trace[f"blocks.{layer}.attn.result"], result, rtol=0, atol=1e-5)
        torch.testing.assert_close(trace[f"blocks.{layer}.mlp.out"], mlp, rtol=0, atol=1e-5)
        torch.testing.assert_close(trace[f"blocks.{layer}.resid_post"], middle + trace[f"blocks.{layer}.mlp.out"],
                                   rtol=0, atol=1e-4)
        assert trace[f"blocks.{layer}.mlp.post"].shape == (trace.n_tokens, runtime.smollm2.model.config.intermediate_size)


def test_unrotated_keys_are_the_plain_projection(runtime: Runtime, trace):
    block = runtime.smollm2.model.model.layers[6]
    shape = runtime.smollm2.shape
    with torch.inference_mode():
        normed = block.input_layernorm(trace["blocks.6.resid_pre"])
        keys = block.self_attn.k_proj(normed).view(trace.n_tokens, shape.n_kv_heads, shape.d_head).transpose(0, 1)
    torch.testing.assert_close(trace["blocks.6.attn.k_unrotated"], keys, rtol=0, atol=1e-5)
    assert not torch.allclose(trace["blocks.6.attn.k_unrotated"][:, 1:], trace["blocks.6.attn.k"][:, 1:])
    torch.testing.assert_close(trace["blocks.6.attn.k_unrotated"][:, 0], trace["blocks.6.attn.k"][:, 0])


def test_interventions_change_what_flows_on(runtime: Runtime, trace):
    skipped = runtime.trace(PROMPT, all_logits=True, interventions={
        "blocks.7.resid_post": lambda output, block_input: block_input,
    })
    assert torch.equal(skipped["blocks.7.resid_post"], skipped["blocks.7.resid_pre"])
    assert torch.equal(skipped["blocks.8.resid_pre"], skipped["blocks.7.resid_pre"])
    assert torch.equal(skipped["blocks.6.resid_post"], trace["blocks.6.resid_post"]), "earlier layers untouched"
    assert not torch.equal(skipped.logits, trace.logits)
    zeroed = runtime.trace(PROMPT, interventions={"blocks.3.mlp.out": lambda output, _: torch.zeros_like(output)})
    assert (zeroed["blocks.3.mlp.out"] == 0).all()
    torch.testing.assert_close(zeroed["blocks.3.resid_post"], zeroed["blocks.3.resid_pre"] + zeroed["blocks.3.attn.result"])
    again = runtime.trace(PROMPT, all_logits=True)
    assert torch.equal(again.logits, trace.logits), "an intervention never outlives its trace"
