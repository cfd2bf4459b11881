"""KQV Tutor: the Streamlit entry point. Pages live in kqv_demo/ui/pages/."""

import streamlit as st

import kqv_demo.ui.fairness  # noqa: F401 (how sessions share the GIL: set once per server)
from kqv_demo.ui.failures import shown_plainly
from kqv_demo.ui.page_style import apply_page_style

st.set_page_config(page_title="KQV Tutor", page_icon=":material/neurology:", layout="wide")
apply_page_style()

PAGES = "kqv_demo/ui/pages"
navigation = st.navigation(
    [
        st.Page(f"{PAGES}/home.py", title="Home", icon=":material/home:", default=True),
        st.Page(f"{PAGES}/quiz.py", title="Quiz", icon=":material/quiz:", url_path="quiz"),
        st.Page(f"{PAGES}/ask.py", title="Ask", icon=":material/chat:", url_path="ask"),
        st.Page(f"{PAGES}/demo_lab.py", title="Demo lab", icon=":material/science:", url_path="demo-lab"),
        st.Page(f"{PAGES}/claims.py", title="Claims", icon=":material/fact_check:", url_path="claims"),
        st.Page(f"{PAGES}/instructor.py", title="Instructor", icon=":material/school:", url_path="instructor"),
        st.Page(f"{PAGES}/about.py", title="About", icon=":material/info:", url_path="about"),
    ]
)
with shown_plainly():
    navigation.run()
