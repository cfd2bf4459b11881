"""Home: what KQV Tutor is for, and where to start."""

import streamlit as st

st.title("KQV Tutor")
st.markdown(
    "How does transformer attention **really** work? Queries, keys and values are easy to "
    "misunderstand — and chatbots will happily agree with a misunderstanding. Here every "
    "explanation is checked against the papers and against a real model running on this machine."
)
PAGES = "kqv_demo/ui/pages"
left, middle, right = st.columns(3)
with left.container(border=True):
    st.subheader("See it live")
    st.markdown("Type a sentence and recompute a real model's attention weights by hand.")
    st.page_link(f"{PAGES}/demo_lab.py", label="Open the Demo lab", icon=":material/science:")
with middle.container(border=True):
    st.subheader("Test yourself")
    st.markdown("Rounds of questions with confidence ratings and corrections that stick.")
    st.page_link(f"{PAGES}/quiz.py", label="Take a quiz", icon=":material/quiz:")
with right.container(border=True):
    st.subheader("Ask")
    st.markdown("State a belief or ask a question; get a vetted answer with its sources.")
    st.page_link(f"{PAGES}/ask.py", label="Ask (being built)", icon=":material/chat:")
st.page_link(f"{PAGES}/about.py", label="Where this comes from, and which models it runs", icon=":material/info:")
