"""Claims: browse and search every checkable claim of the source dialogue and the common misconceptions
that learners state in public posts."""

import streamlit as st

from kqv_demo.claim_source import ORIGIN_LABELS, from_origin, headline
from kqv_demo.content.schema import TOPICS
from kqv_demo.content.search import VERDICT_LABELS, VERDICT_ORDER, filter_claims
from kqv_demo.ui.bank import bank, show_content_errors
from kqv_demo.ui.claim_card import CLAIMS, claim_card
from kqv_demo.markup import literal

SOURCES = {"all": "All", **ORIGIN_LABELS}
ORIGIN_ORDER = {"dialogue": 0, "public": 1}

st.title("Claims")
st.caption(
    "Every checkable claim of the source dialogue, quoted, and the common misconceptions that learners "
    "state in public posts, each with the addresses where it was seen. Every claim has a verdict and a "
    "correction that cites its sources. Click a claim to read it."
)
loaded = bank()
show_content_errors(loaded)

single = st.query_params.get("claim")
if single:
    claim = loaded.claims.get(single)
    if claim is None:
        st.warning(f"There is no claim with the id {literal(repr(single), max_chars=80)}. Here are all of them.")
    else:
        st.page_link(CLAIMS, label="All claims", icon=":material/arrow_back:")
        st.subheader(claim.refutation.claim)
        claim_card(claim, loaded.quote_lines.get(claim.id), loaded.dialogue)
        st.stop()

if not loaded.claims:
    st.info("The claim bank is empty: no valid claim files were found under content/claims/.")
    st.stop()

search = st.text_input("Search", placeholder="e.g. KL divergence, softmax, layers")
left, middle, right = st.columns([3, 2, 1], vertical_alignment="bottom")
topics = left.multiselect("Topics", TOPICS)
verdicts = middle.pills("Verdict", list(VERDICT_LABELS), format_func=VERDICT_LABELS.get, selection_mode="multi")
core_only = right.toggle("Core only")

matching = filter_claims(loaded.claims.values(), search, topics, verdicts, core_only)
# Each source's count within the other filters. The radio's key is its identity, so the labels may
# change with the counts without resetting the choice; `?source=public` opens the page on one source.
per_source = {"all": len(matching), **{origin: len(from_origin(matching, origin))
                                       for origin in ORIGIN_LABELS}}
linked = st.query_params.get("source")
source = st.radio("Source", list(SOURCES), index=list(SOURCES).index(linked) if linked in SOURCES else 0,
                  format_func=lambda key: f"{SOURCES[key]} · {per_source[key]}", horizontal=True,
                  key="source")

claims = sorted(
    from_origin(matching, source),
    key=lambda c: (not c.core, VERDICT_ORDER[c.verdict], ORIGIN_ORDER[c.origin],
                   loaded.quote_lines.get(c.id, c.line or 0), c.id),
)
counts = {v: sum(c.verdict == v for c in claims) for v in VERDICT_LABELS}
st.markdown(
    f"**{len(claims)}** of {len(loaded.claims)} claims: "
    + ", ".join(f"{counts[v]} {VERDICT_LABELS[v].lower()}" for v in VERDICT_LABELS)
)
if not claims:
    st.info("No claim matches these filters. Clear the search or pick fewer filters.")
for claim in claims:
    with st.expander(f"**{VERDICT_LABELS[claim.verdict]}** · {headline(claim)}"):
        claim_card(claim, loaded.quote_lines.get(claim.id), loaded.dialogue)
