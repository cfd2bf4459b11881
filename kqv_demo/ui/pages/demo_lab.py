"""Demo lab: live demonstrations on the learner's own sentence."""

import streamlit as st

from kqv_demo.demos import DEMOS
from kqv_demo.errors import UserInputError
from kqv_demo.ui.demo_views import demo_view
from kqv_demo.ui.resources import runtime
from kqv_demo.markup import literal

st.title("Demo lab")
st.caption("Real models, computed live on your input: SmolLM2-135M-Instruct (decoder) and all-MiniLM-L6-v2 (encoder).")

demo_ids = list(DEMOS)
requested = st.query_params.get("demo", demo_ids[0])
demo_id = st.selectbox(
    "Demonstration",
    demo_ids,
    index=demo_ids.index(requested) if requested in demo_ids else 0,
    format_func=lambda key: DEMOS[key].title,
)
if requested not in DEMOS:
    st.warning(f"There is no demo called {literal(repr(requested), max_chars=80)}; "
               f"showing {DEMOS[demo_id].title} instead.")
demo = DEMOS[demo_id]
st.markdown(demo.summary)

models = runtime()
try:
    demo_view(demo, models)
except UserInputError as problem:  # it may quote the learner's sentence or a link's value
    st.error(literal(str(problem)))
