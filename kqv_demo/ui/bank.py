"""The claim bank for the UI: loaded once per content change, shared by every session."""

from __future__ import annotations

import streamlit as st

from pathlib import Path

from kqv_demo.content.loader import Bank, content_dir, content_signature, load_bank


@st.cache_resource(max_entries=2, show_spinner=False)
def _bank(signature: str, root: str) -> Bank:
    return load_bank(Path(root))


def bank() -> Bank:
    """The loaded bank; reloaded automatically when any content file changes."""
    root = content_dir()
    return _bank(content_signature(root), str(root))


def show_content_errors(loaded: Bank) -> None:
    """Say which entries failed and why; the rest is served."""
    if not loaded.errors:
        return
    files = sorted({error.file.name for error in loaded.errors})
    with st.expander(f"{len(files)} content file(s) have errors and were left out", icon=":material/warning:"):
        st.code("\n".join(str(error) for error in loaded.errors), language=None)
