"""The progress database, one connection pool per process."""

from __future__ import annotations

import streamlit as st

from kqv_demo.storage import Store, database_url


@st.cache_resource(show_spinner=False)
def _store(url: str) -> Store:
    return Store(url)


def store() -> Store:
    return _store(database_url())
