"""Demo lab: live demonstrations on the learner's own sentence."""

import streamlit as st

from kqv_demo.demos import DEMOS
from kqv_demo.errors import UserInputError
from kqv_demo.ui import demo_views
from kqv_demo.ui.resources import runtime

st.title("Demo lab")
st.caption("Real models, computed live on your sentence: SmolLM2-135M-Instruct (decoder) and all-MiniLM-L6-v2.")

demo_ids = list(DEMOS)
requested = st.query_params.get("demo", demo_ids[0])
demo_id = st.selectbox(
    "Demonstration",
    demo_ids,
    index=demo_ids.index(requested) if requested in demo_ids else 0,
    format_func=lambda key: DEMOS[key].title,
)
if requested not in DEMOS:
    st.warning(f"There is no demo called {requested!r}; showing {DEMOS[demo_id].title} instead.")
st.markdown(DEMOS[demo_id].summary)

models = runtime()
try:
    demo_views.VIEWS[demo_id](models)
except UserInputError as problem:
    st.error(str(problem))
