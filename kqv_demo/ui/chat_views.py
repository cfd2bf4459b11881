"""The explainer chat in Streamlit: the cached explainer, one reply, its evidence, demo and comparison."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from kqv_demo.content.loader import content_dir, content_signature
from kqv_demo.demos import DEMOS
from kqv_demo.errors import KqvError
from kqv_demo.explainer.chat import Explainer, Reply
from kqv_demo.explainer.small_model import ask_small_model
from kqv_demo.markup import literal, literal_block
from kqv_demo.runtime import Runtime
from kqv_demo.ui.bank import bank
from kqv_demo.ui.demo_views import demo_inline
from kqv_demo.ui.resources import charge

STANCE_BADGES = {
    "refute": ("Corrects", "red", ":material/block:"),
    "affirm": ("Agrees", "green", ":material/check:"),
    "explain": ("Explains", "blue", ":material/menu_book:"),
    "decline": ("Declines", "gray", ":material/do_not_disturb_on:"),
}


@st.cache_resource(max_entries=2, show_spinner="Indexing the vetted bank (once)…")
def _explainer(signature: str, _runtime: Runtime) -> Explainer:
    return Explainer(bank(), _runtime)


def explainer(models: Runtime) -> Explainer:
    """One explainer per content version, shared by every session."""
    return _explainer(content_signature(content_dir()), models)


def learner_message(text: str) -> None:
    with st.chat_message("user"):
        st.markdown(literal_block(text) if text.strip() else "*(empty message)*")


def not_sent(message: str, why: str) -> None:
    """A message refused by the rate limit: say why, and give it back so nothing typed is lost."""
    st.warning(why, icon=":material/hourglass_top:")
    if message.strip():
        st.caption("Your message was not sent; copy it from here to send it again:")
        st.code(message, language=None, wrap_lines=True)  # plain text: shown as typed, with a copy button


def reply_view(reply: Reply, turn: int, models: Runtime) -> None:
    with st.chat_message("assistant"):
        label, colour, icon = STANCE_BADGES[reply.stance]
        badges = st.container(horizontal=True)
        with badges:
            st.badge(label, color=colour, icon=icon)
            if reply.verdict:
                st.badge(f"claim verdict: {reply.verdict}", color="gray")
            for topic in reply.topics:
                st.badge(topic, color="gray")
        for notice in reply.notices:
            st.warning(notice)
        st.markdown(reply.answer)
        if reply.matches:
            evidence(reply)
        if reply.demo and reply.demo.id in DEMOS:
            demo_button(reply, turn, models)
        if reply.stance != "decline" or reply.score > 0:
            compare_with_small_model(reply, turn, models)


def evidence(reply: Reply) -> None:
    with st.expander("Why this answer (what matched, and how it was read)"):
        st.caption(
            "The vetted statements closest to your message. Similarity: cosine of MiniLM sentence embeddings "
            "(what your message is about). Asserts: how surely the stance model, which reads your message and "
            "the statement together, finds that you assert it. The chat corrects only a misconception you "
            "assert, more surely than its correction."
        )
        if reply.rule:
            decided = f"Decided by the rule `{reply.rule}`"
            st.markdown(decided + (f", about: {literal(reply.statement)}" if reply.statement else "."))
        table = pd.DataFrame([
            {"source": f"{m.source}: {m.id}", "kind": m.field, "statement": m.phrasing,
             "similarity": round(m.similarity, 3), "asserts": None if m.asserts is None else round(m.asserts, 3)}
            for m in reply.matches
        ])
        st.dataframe(table, hide_index=True, width="stretch")


def demo_button(reply: Reply, turn: int, models: Runtime) -> None:
    offer = reply.demo
    key = f"ask.demo.{turn}"
    label = "Run the demo on your words" if offer.on_learner_words else "Run the live demo"
    if st.button(f"{label}: {DEMOS[offer.id].title}", key=f"{key}.button", icon=":material/science:"):
        st.session_state[key] = True
    if st.session_state.get(key):
        try:
            demo_inline(DEMOS[offer.id], models, offer.prompt, dict(offer.params))
        except KqvError as problem:
            st.error(literal(str(problem)))


def compare_with_small_model(reply: Reply, turn: int, models: Runtime) -> None:
    key = f"ask.small.{turn}"
    if not st.toggle("Compare: ask the small model (unvetted)", key=key):
        return
    with st.spinner("SmolLM2-135M-Instruct is writing (about 50 tokens)…"):
        try:
            small = _small_answer(models, reply.text)
        except KqvError as problem:
            st.error(literal(str(problem)))
            return
    st.warning(
        "**Unvetted.** This is SmolLM2-135M-Instruct's raw continuation of your message: the likeliest "
        "tokens, checked against nothing. A chatbot agreeing with you is not evidence.",
        icon=":material/warning:",
    )
    st.text(small.text or "(no text)")
    st.caption("Its probabilities for the first token of the answer:")
    st.dataframe(
        pd.DataFrame([{"token": repr(token), "probability": round(p, 4)} for token, p in small.first_token_top]),
        hide_index=True,
    )


@st.cache_data(max_entries=64, show_spinner=False)
def _small_answer(_models: Runtime, message: str):
    charge("chat")  # runs only for a message not answered before: a new generation counts as a message
    return ask_small_model(_models, message)
