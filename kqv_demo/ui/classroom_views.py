"""Pieces of the class-round UI shared by the Quiz and Instructor pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from kqv_demo.classroom import ClassResults, class_results, format_code, results_csv
from kqv_demo.content.loader import Bank
from kqv_demo.markup import literal
from kqv_demo.quiz.resolve import round_items
from kqv_demo.quiz.rounds import RoundSpec
from kqv_demo.storage import Store

REFRESH_SECONDS = 5


def time_left_notice(left: timedelta) -> None:
    """The time left in a timed round, counting down by itself (a fragment that reruns alone)."""
    deadline = datetime.now(UTC) + left

    @st.fragment(run_every=timedelta(seconds=1))
    def countdown() -> None:
        remaining = max(deadline - datetime.now(UTC), timedelta(0))
        minutes, seconds = divmod(int(remaining.total_seconds()), 60)
        if not remaining:
            st.warning("Time is up: answers are no longer accepted.", icon=":material/timer_off:")
            return
        text = f"Time left: {minutes} min {seconds:02d} s" if minutes < 5 else f"Time left: about {minutes} minutes"
        (st.warning if minutes < 5 else st.info)(text + " (answers after the deadline are not accepted).",
                                                     icon=":material/timer:")

    countdown()


def student_link(code: str) -> str:
    """The link students open: this server's address + /quiz?class=CODE."""
    base = (st.context.url or "").rstrip("/")
    for page in ("/instructor", "/quiz"):
        base = base.removesuffix(page)
    return f"{base or 'http://localhost:8501'}/quiz?class={code}"


def round_outline(bank: Bank, spec: RoundSpec) -> None:
    """What a round will contain, before the instructor creates a class from it."""
    items = round_items(bank, spec)
    with st.container(border=True):
        st.markdown(f"**{literal(spec.title)}**")
        if spec.description:
            st.caption(literal(spec.description))
        st.markdown(
            f"{len(items)} questions · order: {spec.order} · feedback: "
            f"{'after each answer' if spec.feedback == 'immediate' else 'at the end'} · "
            + (f"time limit: {spec.time_limit_minutes} min" if spec.time_limit_minutes else "no time limit")
        )


def created_notice(code: str, key: str) -> None:
    """The new round's code and link, and the instructor key, shown this once."""
    st.success("The class round is ready. Give the class the code or the link.")
    st.markdown(f"# {format_code(code)}")
    st.code(student_link(code), language=None)
    st.warning("**Instructor key: save it now.** It is shown only this once (the server keeps only a hash) "
               "and it is the only way to open this round's results.", icon=":material/key:")
    st.code(key, language=None)


def _accuracy_chart(results: ClassResults) -> alt.Chart:
    rows = [{"question": f"Q{number}", "item": item.item_id, "answered": item.answered,
             "correct share": item.correct_share} for number, item in enumerate(results.items, start=1)]
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar(color="#0072B2")  # Okabe-Ito blue: readable with every colour-vision type
        .encode(
            x=alt.X("question:N", title="question (unanswered ones have no bar)",
                    scale=alt.Scale(domain=[row["question"] for row in rows])),
            y=alt.Y("correct share:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"),
                    title="answered right"),
            tooltip=["question", "item", "answered", alt.Tooltip("correct share:Q", format=".0%")],
        )
        .properties(height=240)
    )


@st.fragment(run_every=REFRESH_SECONDS)
def class_dashboard(store: Store, bank: Bank, code: str) -> None:
    """The live results of one class (refreshed every few seconds). Names are shown as table cells only."""
    results = class_results(store, bank, code)
    st.subheader(f"{format_code(results.code)}: {literal(results.title)}")
    first, second, third = st.columns(3)
    first.metric("Joined", results.joined)
    second.metric("Finished", results.finished)
    third.metric("Answers", results.answers)
    st.markdown("#### Per question: how many answered right")
    st.altair_chart(_accuracy_chart(results), width="stretch")
    st.dataframe(pd.DataFrame([
        {"question": f"Q{number}", "item": item.item_id, "prompt": item.prompt, "answered": item.answered,
         "right": None if item.correct_share is None else round(100 * item.correct_share)}
        for number, item in enumerate(results.items, start=1)
    ]), hide_index=True, column_config={"right": st.column_config.NumberColumn("right (%)")})
    st.markdown("#### Misconceptions held with confidence")
    if results.misconceptions:
        st.dataframe(pd.DataFrame([{"claim": m.claim, "wrong and sure": m.sure, "wrong and fairly sure": m.fairly_sure,
                                    "claim id": m.claim_id} for m in results.misconceptions]), hide_index=True)
    else:
        st.caption("No confident wrong answers yet.")
    st.markdown("#### Students")
    st.dataframe(pd.DataFrame([
        {"student": s.name, "answered": f"{s.answered} / {s.items}", "right": s.correct,
         "certainty-based score": f"{s.cbm_total} / {s.cbm_max}", "calibration (right / answered)": s.calibration_text,
         "finished": "yes" if s.finished else "no"}
        for s in results.students
    ], columns=["student", "answered", "right", "certainty-based score", "calibration (right / answered)",
                "finished"]), hide_index=True)
    st.download_button("Download the results (CSV)", results_csv(results), file_name=f"class-{results.code}.csv",
                       mime="text/csv", on_click="ignore", icon=":material/download:")
