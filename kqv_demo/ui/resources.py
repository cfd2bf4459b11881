"""Process-wide resources for every Streamlit session: one copy of the models."""

from __future__ import annotations

import streamlit as st

from kqv_demo import runtime as rt
from kqv_demo.errors import ModelUnavailable


@st.cache_resource(show_spinner=False)
def _runtime() -> rt.Runtime:
    return rt.shared_runtime()


def runtime() -> rt.Runtime:
    """The shared models; the first call shows load progress, a broken install shows its fix."""
    try:
        if not rt.is_loaded():
            with st.status("Loading the models…", expanded=True) as status:
                bar = st.progress(0.0, text="Checking the model files")
                rt.shared_runtime(progress=lambda message, fraction: bar.progress(fraction, text=message))
                status.update(label="Models loaded", state="complete", expanded=False)
        return _runtime()
    except ModelUnavailable as missing:
        st.error(f"{missing}\n\nFix it with:")
        st.code(missing.fix, language="bash")
        st.stop()
        raise  # st.stop() raises; this line keeps type checkers honest
