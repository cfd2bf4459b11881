"""KQV Tutor: the Streamlit entry point. Pages live in kqv_demo/ui/pages/."""

import streamlit as st

import kqv_demo.ui.fairness  # noqa: F401 (how sessions share the GIL: set once per server)
from kqv_demo.ui.failures import shown_plainly
from kqv_demo.ui.navigation import PAGES
from kqv_demo.ui.page_style import apply_page_style

st.set_page_config(page_title="KQV Tutor", page_icon=":material/neurology:", layout="wide")
apply_page_style()

navigation = st.navigation([
    st.Page(page.path, title=page.title, icon=page.icon, url_path=page.url_path, default=page.url_path is None)
    for page in PAGES.values()
])
with shown_plainly():
    navigation.run()
