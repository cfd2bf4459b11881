"""One attention pass: each layer calls attention once and its MLP once; the block is h + attn + mlp."""

from __future__ import annotations

import pytest

from kqv_demo import numerics
from kqv_demo.demos import one_attention_pass
from kqv_demo.runtime import Runtime

DEMO = one_attention_pass.DEMO


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


LONG = "The bank of the river was muddy after the long storm, so we stayed home."


@pytest.mark.parametrize("prompt", [None, "Hi", LONG])
def test_attention_and_mlp_run_once_per_layer(runtime: Runtime, prompt):
    result = DEMO.run(runtime, prompt)
    layers = runtime.smollm2.model.config.num_hidden_layers
    assert result.n_layers == layers
    assert result.attention_calls.tolist() == [1] * layers
    assert result.mlp_calls.tolist() == [1] * layers
    assert result.residual_max_diff.shape == (layers,)
    assert result.residual_max_diff.max() <= 1e-3


def test_one_call_computes_all_heads(runtime: Runtime, result):
    config = runtime.smollm2.model.config
    assert result.pattern_shape == (config.num_attention_heads, result.n_tokens, result.n_tokens)
    assert result.query_shape == (config.num_attention_heads, result.n_tokens, config.head_dim)
    assert result.hidden_shape == (result.n_tokens, config.hidden_size)
    assert result.query_weights == config.num_hidden_layers


def test_the_block_is_input_plus_attention_plus_mlp(result):
    assert result.residual_max_diff.max() <= 1e-3
    assert result.residual_scale > 1000, "token 0's large activation makes this a demanding check"
    ok, _ = one_attention_pass.status(result)
    assert ok


def test_leaving_out_the_mlp_breaks_the_sum(runtime: Runtime):
    """A control: the check above can fail; the MLP update is not negligible."""
    trace = runtime.trace(DEMO.default_prompt)
    for layer in (0, 15, 29):
        pre, post = trace[f"blocks.{layer}.resid_pre"], trace[f"blocks.{layer}.resid_post"]
        assert float((post - (pre + trace[f"blocks.{layer}.attn_out"])).abs().max()) > 0.1


def _next_keys_noise(runtime: Runtime) -> float:
    """How far the demo's W_K(L+1)·RMSNorm(resid_post[L]) may be from the model's keys on any CPU: the norm's
    mean of d squares (relative d·EPS for two evaluations), then the product with W_K (kqv_demo.numerics)."""
    config = runtime.smollm2.model.config
    trace = runtime.trace(DEMO.default_prompt, names_filter=lambda name: name.endswith(".resid_post"))
    worst = 0.0
    for layer in range(config.num_hidden_layers - 1):
        state = trace[f"blocks.{layer}.resid_post"]
        prefix = f"model.layers.{layer + 1}."
        normed = one_attention_pass._rms_norm(state, runtime.parameter(prefix + "input_layernorm.weight"),
                                              config.rms_norm_eps)
        w_k = runtime.parameter(prefix + "self_attn.k_proj.weight")
        magnitude = float((normed.abs() @ w_k.abs().T).max())
        worst = max(worst, numerics.matmul_noise(normed, w_k.T) + numerics.sum_noise(config.hidden_size, magnitude))
    return worst


def test_the_next_layer_reads_the_hidden_state_not_a_query(runtime: Runtime, result):
    assert result.handoff_max_diff == 0  # exact on any CPU: the next block receives the very same tensor
    assert result.next_keys_max_diff.shape == (result.n_layers - 1,)
    assert result.next_keys_max_diff.max() <= _next_keys_noise(runtime) < 1e-2


def test_explanation_and_chart_describe_this_run(result):
    text = one_attention_pass.explain(result)
    assert "exactly once" in text and f"{result.n_layers} layers" in text
    assert 60 <= len(text.split()) <= 150
    spec = one_attention_pass.chart(result).to_dict()
    rows = spec["datasets"][spec["data"]["name"]]
    assert len(rows) == 2 * result.n_layers
    assert {row["calls in one forward pass"] for row in rows} == {1}
    axis = spec["encoding"]["y"]["axis"]
    assert axis["values"] == [0, 1, 2], "1, where every bar ends, is a labelled tick"
    assert axis["format"] != "d", "the app's Vega drops the middle of explicit values with format 'd'"
    assert spec["encoding"]["y"]["scale"]["domain"] == [0, 2]
