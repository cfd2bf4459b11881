"""Streamlit views of the demos: inputs, the live computation, the chart and the words."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from kqv_demo import settings
from kqv_demo.demos import ATTENTION_BY_HAND, attention_by_hand
from kqv_demo.runtime import Runtime
from kqv_demo.trace import Trace


@st.cache_resource(max_entries=16, show_spinner=False)
def layer_trace(_runtime: Runtime, prompt: str, layer: int) -> Trace:
    """One forward pass recording only `layer`'s attention (small, so many can be cached)."""
    prefix = f"blocks.{layer}.attn."
    return _runtime.trace(prompt, names_filter=lambda name: name.startswith(prefix))


def _query_int(name: str, default: int, upper: int) -> int:
    try:
        value = int(st.query_params.get(name, default))
    except ValueError:
        return default
    return value if 0 <= value <= upper else default


def attention_by_hand_view(models: Runtime) -> None:
    shape = models.smollm2.shape
    prompt = st.text_area(
        "Your sentence",
        value=st.query_params.get("prompt", ATTENTION_BY_HAND.default_prompt),
        max_chars=4000,
        help=f"Up to {settings.MAX_PROMPT_TOKENS} tokens are used; longer text is cut, with a notice.",
    )
    left, middle, right = st.columns([3, 2, 2])
    layer = left.slider("Layer", 0, shape.n_layers - 1, _query_int("layer", 0, shape.n_layers - 1))
    head = middle.selectbox("Query head", range(shape.n_heads), index=_query_int("head", 0, shape.n_heads - 1))
    scaled = right.toggle("Divide by √d", value=True)
    masked = right.toggle("Causal mask", value=True)

    with st.spinner("Running SmolLM2 on your sentence…"):
        trace = layer_trace(models, prompt, layer)
    if trace.truncation:
        st.warning(trace.truncation.message)
    result = attention_by_hand.compute(trace, layer, head, scaled=scaled, masked=masked)

    first, second, third = st.columns(3)
    first.metric("Max |by hand − model|", f"{result.max_abs_diff:.1e}")
    second.metric("Largest weight above the diagonal", f"{result.upper_triangle_max:g}")
    third.metric("Largest |row sum − 1|", f"{result.row_sum_max_error:.1e}")
    if result.matches:
        st.success("The hand computation reproduces the model's attention weights.")
    else:
        st.error("With this setting the hand computation no longer matches the model.")
    st.altair_chart(attention_by_hand.chart(result), width="content")
    st.markdown(attention_by_hand.explanation(result))
    with st.expander("The formula and the code"):
        st.latex(
            r"a_{ij} = \frac{\exp(s_{ij})}{\sum_{j'} \exp(s_{ij'})},\qquad "
            r"s_{ij} = \frac{q_i \cdot k_j}{\sqrt{d}} + m_{ij},\qquad "
            r"m_{ij} = \begin{cases} 0 & j \le i \\ -\infty & j > i \end{cases}"
        )
        st.code(
            f"q = trace['blocks.{layer}.attn.q'][{head}]        # [T, {shape.d_head}] queries, after RoPE\n"
            f"k = trace['blocks.{layer}.attn.k'][{result.kv_head}]        # [T, {shape.d_head}] keys of KV head {result.kv_head}\n"
            f"scores = q @ k.T / {shape.d_head}**0.5\n"
            "scores[future] = -inf                       # causal mask\n"
            "weights = scores.softmax(-1)               # compare with trace[...attn.pattern]",
            language="python",
        )


VIEWS: dict[str, Callable[[Runtime], None]] = {ATTENTION_BY_HAND.id: attention_by_hand_view}
