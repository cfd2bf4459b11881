"""One claim, as a card: where it comes from (the dialogue's quote, or the public posts where learners
state it), verdict, refutation, references, live demo (or why there is none) and a shareable link."""

from __future__ import annotations

import streamlit as st

from kqv_demo.claim_source import SAID_IN_THE_DIALOGUE, WHERE_LEARNERS_SAY_IT, addresses
from kqv_demo.content.loader import Dialogue
from kqv_demo.content.schema import Claim
from kqv_demo.content.search import VERDICT_LABELS
from kqv_demo.demos import DEMOS
from kqv_demo.markup import literal
from kqv_demo.ui.navigation import PAGES

VERDICT_COLOURS = {"false": "red", "partly": "orange", "true": "green"}
DEMO_LAB = PAGES["demo_lab"].path
CLAIMS = PAGES["claims"].path


def verdict_badge(claim: Claim) -> None:
    st.badge(VERDICT_LABELS[claim.verdict], color=VERDICT_COLOURS[claim.verdict])


def dialogue_excerpt(claim: Claim, dialogue: Dialogue | None) -> None:
    """The quote in its place in the source dialogue (when the dialogue file is available)."""
    lines = dialogue.excerpt(claim.quote) if dialogue else []
    if lines:
        with st.expander("Read it in the dialogue"):
            st.code("\n".join(f"{'▶' if quoted else ' '} {number:>3}  {text}" for number, text, quoted in lines),
                    language=None, wrap_lines=True)


def said_in_the_dialogue(claim: Claim, dialogue_line: int | None, dialogue: Dialogue | None) -> None:
    where = f"line {dialogue_line}" if dialogue_line else f"around line {claim.line}"
    also = f" (and {len(claim.also_at)} more places)" if claim.also_at else ""
    st.markdown(f"**{SAID_IN_THE_DIALOGUE}:**\n\n> {claim.quote}\n\n"
                f"— *{claim.speaker}*, {where} of the dialogue{also}")
    dialogue_excerpt(claim, dialogue)


def where_learners_say_it(claim: Claim) -> None:
    """One link per address, to exactly that address: the URL is the link's target, never parsed from
    Markdown, and the label shows the address itself (escaped), so a reader sees where a link goes."""
    st.markdown(f"**{WHERE_LEARNERS_SAY_IT}:**")
    for address in addresses(claim):
        st.page_link(address, label=literal(address, max_chars=100), icon=":material/open_in_new:")


def claim_card(claim: Claim, dialogue_line: int | None, dialogue: Dialogue | None = None) -> None:
    badges = st.container(horizontal=True)
    with badges:
        verdict_badge(claim)
        if claim.core:
            st.badge("Core", color="blue")
        if claim.origin == "public":
            st.badge("Seen in public posts", color="violet")
        for topic in claim.topics:
            st.badge(topic, color="gray")
    if claim.origin == "public":
        where_learners_say_it(claim)
    else:
        said_in_the_dialogue(claim, dialogue_line, dialogue)
    refutation = claim.refutation
    st.markdown(f"**The claim.** {refutation.claim}")
    st.markdown(f"**Verdict.** {refutation.verdict}")
    if refutation.right_part:
        st.markdown(f"**What is right.** {refutation.right_part}")
    st.markdown(f"**Why it is tempting.** {refutation.tempting}")
    st.markdown(f"**What is actually true.**\n\n{refutation.truth}")
    st.markdown(f"**The evidence.** {refutation.evidence}")
    st.markdown("**References**\n\n" + "\n".join(f"- {reference.cite()}" for reference in claim.references))
    links = st.container(horizontal=True)
    with links:
        if claim.demo and claim.demo.id in DEMOS:
            params = {"demo": claim.demo.id, **{k: str(v) for k, v in claim.demo.params.items()}}
            if claim.demo.prompt:
                params["prompt"] = claim.demo.prompt
            st.page_link(DEMO_LAB, label=f"Run the live demo: {DEMOS[claim.demo.id].title}",
                         icon=":material/science:", query_params=params)
        elif claim.no_demo:
            st.caption(f"**No live demo.** {claim.no_demo}")
        st.page_link(CLAIMS, label="Link to this claim", icon=":material/link:", query_params={"claim": claim.id})
