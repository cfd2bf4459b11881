"""A plain notice for pages whose feature has not landed yet: what it will do, no fake content."""

from __future__ import annotations

import streamlit as st


def planned_page(title: str, promise: str, features: list[str]) -> None:
    st.title(title)
    st.info(f"**Not built yet.** {promise}", icon=":material/construction:")
    st.markdown("\n".join(f"- {feature}" for feature in features))
    st.caption("Until then, the Demo lab shows real attention computed live on your own sentence.")
