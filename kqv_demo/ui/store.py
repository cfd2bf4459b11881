"""The progress database, one connection pool per process.

A database that cannot be opened raises StorageUnavailable (a plain message, shown by the page); it is
not cached, so the next page view tries again and picks the database up once it is back.
"""

from __future__ import annotations

import streamlit as st

from kqv_demo.storage import Store, database_url


@st.cache_resource(show_spinner=False)
def _store(url: str) -> Store:
    return Store(url)


def store() -> Store:
    return _store(database_url())
