"""Process-wide resources for every Streamlit session: one copy of the models, and the rate limits
that keep one session from starting expensive work faster than the models can do it."""

from __future__ import annotations

import uuid

import streamlit as st

from kqv_demo import ratelimit
from kqv_demo import runtime as rt
from kqv_demo.errors import ModelUnavailable


@st.cache_resource(show_spinner=False)
def _runtime() -> rt.Runtime:
    return rt.shared_runtime()


def preload() -> None:
    """Start loading the models in the background (pages that do not need them yet call this,
    so the first learner who does need them does not wait)."""
    if not rt.is_loaded():
        rt.preload_in_background()


def runtime() -> rt.Runtime:
    """The shared models; a load under way shows its progress, a broken install shows its fix."""
    rt.use_all_threads()
    try:
        if not rt.is_loaded():
            loader = rt.preload_in_background()  # a new attempt if an earlier one failed
            with st.status("Loading the models…", expanded=True) as status:
                bar = st.progress(0.0, text="Checking the model files")
                while loader.is_alive():
                    message, fraction = rt.load_progress()
                    bar.progress(min(max(fraction, 0.0), 1.0), text=message)
                    loader.join(0.2)
                if not rt.is_loaded():
                    status.update(label="The models could not be loaded", state="error")
                    raise rt.load_error() or RuntimeError("Loading the models failed.")
                status.update(label="Models loaded", state="complete", expanded=False)
        return _runtime()
    except ModelUnavailable as missing:
        st.error(f"{missing}\n\nFix it with:")
        st.code(missing.fix, language="bash")
        st.stop()
        raise  # st.stop() raises; this line keeps type checkers honest


@st.cache_resource(show_spinner=False)
def _limiters() -> dict[str, ratelimit.RateLimiter]:
    """One token bucket per session for each kind of expensive request, shared by the whole process."""
    return {limit.name: ratelimit.RateLimiter(limit) for limit in (ratelimit.CHAT, ratelimit.EXPORT, ratelimit.DEMO)}


def session_id() -> str:
    """This browser session's own id (one per open tab): a random id kept in its session state
    (Streamlit's script-run context id is the same for every session that AppTest drives)."""
    if "rate-limit-id" not in st.session_state:
        st.session_state["rate-limit-id"] = uuid.uuid4().hex
    return st.session_state["rate-limit-id"]


def charge(action: str) -> None:
    """Spend one of this session's `action` requests ("chat", "export" or "demo"), or raise
    ratelimit.RateLimited (a UserInputError) whose message says how long to wait."""
    ratelimit.check(_limiters()[action], session_id())
