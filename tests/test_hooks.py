"""The hook points record what their names say, and recording changes nothing in the model."""

from __future__ import annotations

import pytest
import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from kqv_demo import numerics
from kqv_demo.runtime import MINILM, Runtime, load_smollm2

PROMPT = "Keys are computed from each token's hidden state, not looked up."


# Recomputing a sublayer outside the forward pass may use other kernels than the pass did (on some CPUs the
# same ones, giving the same bits; on others not), so these checks allow the float32 bounds of
# kqv_demo.numerics, derived from the numbers involved: they hold on every CPU.


def _norm_and_product_noise(normed: torch.Tensor, weight: torch.Tensor) -> float:
    """An RMSNorm (a mean of d squares: relative d·EPS between two evaluations) followed by `normed @ weightᵀ`."""
    weight = weight.detach()  # a parameter: a bound needs no gradient
    magnitude = float((normed.abs() @ weight.abs().T).max())
    return numerics.matmul_noise(normed, weight.T) + numerics.sum_noise(normed.shape[-1], magnitude)


def _rope_noise(noise: float, rotated: torch.Tensor) -> float:
    """RoPE mixes pairs of entries with cos and sin: an input difference at most doubles, plus its own rounding."""
    return 2 * noise + 4 * numerics.EPS * float(rotated.abs().max())


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
    # Exact on every CPU: our attention calls transformers' eager attention unchanged, so both passes run the
    # same operations in the same order on the same shapes.
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
    attention = block.self_attn
    q_noise = _rope_noise(_norm_and_product_noise(normed, attention.q_proj.weight), q_rope)
    k_noise = _rope_noise(_norm_and_product_noise(normed, attention.k_proj.weight), k_rope)
    torch.testing.assert_close(trace[f"blocks.{layer}.attn.rot_q"], q_rope[0], rtol=0, atol=q_noise)
    torch.testing.assert_close(trace[f"blocks.{layer}.attn.rot_k"], k_rope[0], rtol=0, atol=k_noise)
    torch.testing.assert_close(trace[f"blocks.{layer}.attn.v"], v, rtol=0,
                               atol=_norm_and_product_noise(normed, attention.v_proj.weight))
    assert not torch.allclose(q_rope[0], q), "RoPE must have rotated the queries"


def test_head_outputs_are_weights_times_values(runtime: Runtime, trace):
    shape = runtime.smollm2.shape
    group = shape.n_heads // shape.n_kv_heads
    for layer in (2, 20):
        pattern = trace[f"blocks.{layer}.attn.pattern"]  # [H, T, T]
        values = trace[f"blocks.{layer}.attn.v"].repeat_interleave(group, dim=0)  # [H, T, d]
        expected = (pattern @ values).transpose(0, 1)  # [T, H, d]
        noise = numerics.matmul_noise(pattern, values)
        torch.testing.assert_close(trace[f"blocks.{layer}.attn.z"], expected, rtol=0, atol=noise)


def test_scores_are_scaled_dot_products_before_the_mask(runtime: Runtime, trace):
    q = trace["blocks.4.attn.rot_q"][0]
    k = trace["blocks.4.attn.rot_k"][0]
    scores = trace["blocks.4.attn.scores_unmasked"][0]
    scale = runtime.smollm2.shape.d_head**0.5
    torch.testing.assert_close(scores, q @ k.T / scale, rtol=0, atol=numerics.matmul_noise(q, k.T) / scale)
    assert torch.isfinite(scores).all(), "scores are recorded before the causal mask"


def test_residual_stream_chains_and_the_final_norm_feeds_the_lm_head(runtime: Runtime, trace):
    layers = runtime.smollm2.shape.n_layers
    for layer in range(layers - 1):  # exact on every CPU: the next block receives the very same tensor
        assert torch.equal(trace[f"blocks.{layer}.resid_post"], trace[f"blocks.{layer + 1}.resid_pre"])
    with torch.inference_mode():
        expected_final = runtime.smollm2.model.model.norm(trace[f"blocks.{layers - 1}.resid_post"])
        logits = runtime.smollm2.model.lm_head(trace["ln_final.out"])
    final = trace["ln_final.out"]
    norm_noise = numerics.sum_noise(final.shape[-1], float(final.abs().max()))  # a mean of d squares, rescaled
    torch.testing.assert_close(final, expected_final, rtol=0, atol=norm_noise)
    head = runtime.smollm2.model.lm_head.weight
    torch.testing.assert_close(logits, trace.logits, rtol=0, atol=numerics.matmul_noise(final, head.T))


def test_names_filter_records_only_what_is_asked(runtime: Runtime):
    trace = runtime.trace(PROMPT, names_filter=lambda name: name.startswith("blocks.3.attn."))
    assert set(trace.activations) == {
        f"blocks.3.attn.{n}" for n in ("q", "k", "rot_q", "rot_k", "v", "scores_unmasked", "pattern", "z")
    }
    assert trace.calls["blocks.4.attn.pattern"] == 1, "hooks fire (and are counted) even when not recorded"
    with pytest.raises(KeyError, match="was not recorded"):
        trace["blocks.4.attn.rot_q"]


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
            heads = trace[f"blocks.{layer}.attn.z"].reshape(trace.n_tokens, -1)
            result = block.self_attn.o_proj(heads)
            middle = trace[f"blocks.{layer}.resid_pre"] + trace[f"blocks.{layer}.attn_out"]
            mlp = block.mlp.down_proj(trace[f"blocks.{layer}.mlp.post"])
        attention_noise = numerics.matmul_noise(heads, block.self_attn.o_proj.weight.T)
        mlp_noise = numerics.matmul_noise(trace[f"blocks.{layer}.mlp.post"], block.mlp.down_proj.weight.T)
        torch.testing.assert_close(trace[f"blocks.{layer}.attn_out"], result, rtol=0, atol=attention_noise)
        torch.testing.assert_close(trace[f"blocks.{layer}.mlp_out"], mlp, rtol=0, atol=mlp_noise)
        # exact on every CPU: the same two additions, in the same order, as the block makes
        assert torch.equal(trace[f"blocks.{layer}.resid_post"], middle + trace[f"blocks.{layer}.mlp_out"])
        assert trace[f"blocks.{layer}.mlp.post"].shape == (
            trace.n_tokens, runtime.smollm2.model.config.intermediate_size)


@pytest.mark.parametrize("kind", ["q", "k"])
def test_q_and_k_are_the_plain_projections_and_rot_what_attention_reads(runtime: Runtime, trace, kind: str):
    """Issue #15, 5: attn.q / attn.k are the projections before RoPE (TL's hook_q / hook_k), attn.rot_q /
    attn.rot_k what attention reads after it (hook_rot_q / hook_rot_k). RoPE leaves position 0 unrotated
    and turns the rest."""
    block = runtime.smollm2.model.model.layers[6]
    shape = runtime.smollm2.shape
    projection = getattr(block.self_attn, f"{kind}_proj")
    heads = shape.n_heads if kind == "q" else shape.n_kv_heads
    with torch.inference_mode():
        normed = block.input_layernorm(trace["blocks.6.resid_pre"])
        projected = projection(normed).view(trace.n_tokens, heads, shape.d_head).transpose(0, 1)
    noise = _norm_and_product_noise(normed, projection.weight)
    plain, rotated = trace[f"blocks.6.attn.{kind}"], trace[f"blocks.6.attn.rot_{kind}"]
    torch.testing.assert_close(plain, projected, rtol=0, atol=noise)
    assert not torch.allclose(plain[:, 1:], rotated[:, 1:])
    torch.testing.assert_close(plain[:, 0], rotated[:, 0])


def test_outputs_and_an_encoder_s_names_mean_what_transformerlens_means(runtime: Runtime, trace):
    """attn.z is per head (hook_z) and the summed output is the block's attn_out (hook_attn_out); a model
    without RoPE (MiniLM) has no rot_ names."""
    shape = runtime.smollm2.shape
    assert trace["blocks.6.attn.z"].shape == (trace.n_tokens, shape.n_heads, shape.d_head)
    assert trace["blocks.6.attn_out"].shape == (trace.n_tokens, shape.d_model)
    encoder = runtime.trace(PROMPT, model=MINILM, names_filter=lambda name: name.startswith("blocks.2.attn."))
    assert {"blocks.2.attn.q", "blocks.2.attn.k"} <= set(encoder.activations)  # no RoPE: nothing "rot_"
    assert not any(".rot_" in name for name in encoder.activations)


def test_interventions_change_what_flows_on(runtime: Runtime, trace):
    skipped = runtime.trace(PROMPT, all_logits=True, interventions={
        "blocks.7.resid_post": lambda output, block_input: block_input,
    })
    assert torch.equal(skipped["blocks.7.resid_post"], skipped["blocks.7.resid_pre"])
    assert torch.equal(skipped["blocks.8.resid_pre"], skipped["blocks.7.resid_pre"])
    assert torch.equal(skipped["blocks.6.resid_post"], trace["blocks.6.resid_post"]), "earlier layers untouched"
    assert not torch.equal(skipped.logits, trace.logits)
    zeroed = runtime.trace(PROMPT, interventions={"blocks.3.mlp_out": lambda output, _: torch.zeros_like(output)})
    assert (zeroed["blocks.3.mlp_out"] == 0).all()
    torch.testing.assert_close(zeroed["blocks.3.resid_post"],
                               zeroed["blocks.3.resid_pre"] + zeroed["blocks.3.attn_out"])
    again = runtime.trace(PROMPT, all_logits=True)  # the same pass again: exact on any CPU
    assert torch.equal(again.logits, trace.logits), "an intervention never outlives its trace"
