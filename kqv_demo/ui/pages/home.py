"""Home: what KQV Tutor is for, and where to start."""

import streamlit as st

from kqv_demo.demos import DEMOS
from kqv_demo.ui.bank import bank
from kqv_demo.ui.navigation import PAGES
from kqv_demo.ui.resources import preload

preload()  # the Demo lab, quizzes and Ask need the models; load them while the learner reads

st.title("KQV Tutor")
st.markdown(
    "How does transformer attention **really** work? Queries, keys and values are easy to "
    "misunderstand — and chatbots will happily agree with a misunderstanding. Here every "
    "explanation is checked against the papers and against a real model running on this machine."
)
cards = [
    ("Test yourself", "Rounds of questions; say how sure you are before the answer is revealed.",
     "quiz", "Take a quiz", ":material/quiz:"),
    ("See it live", f"{len(DEMOS)} demonstrations on real models, on your own sentence.",
     "demo_lab", "Open the Demo lab", ":material/science:"),
    ("Read the claims", f"{len(bank().claims)} claims: those of the source dialogue and the common misconceptions "
     "learners state in public posts, each checked, with its correction.",
     "claims", "Browse the claims", ":material/fact_check:"),
    ("Ask", "Ask a question or state a belief: answers come only from the vetted bank, "
     "and say plainly when you are wrong.",
     "ask", "Ask the tutor", ":material/forum:"),
    ("Teach a class", "Give a class a round by code, watch the results live, print handouts, export to Moodle or Anki.",
     "instructor", "Open the instructor page", ":material/school:"),
]
for row in (cards[:3], cards[3:]):
    for column, (title, text, page, label, icon) in zip(st.columns(3), row):
        with column.container(border=True):
            st.subheader(title)
            st.markdown(text)
            st.page_link(PAGES[page].path, label=label, icon=icon)
st.page_link(PAGES["about"].path, label="Where this comes from, and which models it runs", icon=":material/info:")
