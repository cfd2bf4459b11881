"""Pieces of the class-round UI shared by the Quiz and Instructor pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from kqv_demo import classroom
from kqv_demo.classroom import ClassResults, class_results, format_code, results_csv
from kqv_demo.classroom.results import CSV_LEGEND
from kqv_demo.content.loader import Bank
from kqv_demo.errors import KqvError
from kqv_demo.markup import literal
from kqv_demo.quiz.resolve import round_items
from kqv_demo.quiz.rounds import RoundSpec
from kqv_demo.storage import REMOVED_MESSAGE, Store, StoredClass

REFRESH_SECONDS = 5
WAITING_POLL_SECONDS = 5  # a class of 300 waiting: 60 light checks a second; Start shows within 5 s
OWN_PROFILE = "own_profile"  # session state: the learner key this browser session made or confirmed
REMOVE_CHOICE = "remove-choice"
CONTROL_PROBLEM = "class-control-problem"


# --- the student's side ---------------------------------------------------------------------------
def confirm_profile(name: str, joining: StoredClass) -> str | None:
    """Ask before joining a class under a profile that came with the link. "me", "new" or None (not yet)."""
    st.warning(f"You are playing as **{literal(name)}**. Not you?", icon=":material/person_alert:")
    st.markdown(f"This link joins the class round **{literal(joining.title)}** ({format_code(joining.code)}) "
                f"as **{literal(name)}**: your answers would be stored under that profile, and whoever it "
                "belongs to could see them. If it is not yours, start a profile of your own.")
    left, right = st.columns(2)
    if left.button(f"I am {literal(name, 40)}: join", type="primary", key="profile-is-mine"):
        return "me"
    if right.button("Not me: start a new profile", key="profile-is-not-mine"):
        return "new"
    return None


def playing_as(name: str) -> bool:
    """The profile's name on every round page, with a way out. True when the learner says it is not them."""
    left, right = st.columns([3, 1], vertical_alignment="center")
    left.caption(f"Playing as **{literal(name)}**.")
    return right.button("Not you? Start a new profile", key="not-me")


def removed_notice(stored: StoredClass, name: str) -> None:
    st.subheader(literal(stored.title))
    st.error(f"{REMOVED_MESSAGE} (Profile: {literal(name)}.) Your other rounds are not affected.",
             icon=":material/block:")


def waiting_for_start(store: Store, stored: StoredClass, name: str) -> None:
    """The class round before the instructor starts it: no question, no time limit, and the page moves
    on by itself when it starts (a fragment that checks every few seconds)."""
    st.subheader(literal(stored.title))
    st.info(f"You are in, as **{literal(name)}**. Waiting for your instructor to start the round: the first "
            "question appears here by itself when it starts, and any time limit counts from then.",
            icon=":material/hourglass_top:")

    @st.fragment(run_every=timedelta(seconds=WAITING_POLL_SECONDS))
    def until_started() -> None:
        try:
            current = store.class_by_code(stored.code)
        except KqvError:  # the database is away for a moment: look again at the next tick
            return
        if current is not None and not current.waiting:
            st.rerun(scope="app")

    until_started()


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


# --- the instructor's side -------------------------------------------------------------------------
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


def created_notice(code: str, key: str, stored: StoredClass | None) -> None:
    """The new round's code and link, and the instructor key, shown this once."""
    st.success("The class round is ready. Give the class the code or the link.")
    st.markdown(f"# {format_code(code)}")
    st.code(student_link(code), language=None)
    st.warning("**Instructor key: save it now.** It is shown only this once (the server keeps only a hash) "
               "and it is the only way to open this round's results.", icon=":material/key:")
    st.code(key, language=None)
    if stored is not None:
        st.caption(f"At most {stored.max_students} students can join. "
                   + ("They wait until you press Start the round (under Class results)." if stored.waiting
                      else "They can start as soon as they join."))


def class_controls(store: Store, results: ClassResults) -> None:
    """Start the round, close or reopen joining, remove a student. Behind the instructor key.

    The buttons act in callbacks, which run before the dashboard is drawn again: it shows the new state.
    """
    code = results.code
    if (problem := st.session_state.pop(CONTROL_PROBLEM, None)) is not None:
        st.error(literal(problem))
    if results.started is None:
        st.warning(f"{results.joined} student(s) waiting: nobody sees a question until you start the round. "
                   "A time limit counts from the start.", icon=":material/hourglass_top:")
        st.button("Start the round", type="primary", key="start-class", on_click=_act,
                  args=(classroom.start_class, store, code))
    else:
        st.caption(f"Started at {results.started:%H:%M} UTC. A time limit counts from each student's start "
                   "(when they joined, or your start if they were waiting).")
    place = f"{results.joined} of at most {results.max_students} places taken"
    if results.joining_open:
        st.caption(f"Joining is open ({place}).")
        st.button("Close joining", key="close-joining", on_click=_act, args=(classroom.set_joining, store, code, False),
                  help="Students who joined go on; nobody new can join. You can open it again.")
    else:
        st.caption(f"Joining is closed ({place}): nobody new can join.")
        st.button("Open joining again", key="open-joining", on_click=_act,
                  args=(classroom.set_joining, store, code, True))
    if results.students:
        names = {student.round_id: student.name for student in results.students}
        with st.expander("Remove a student"):
            chosen = st.selectbox("Student", list(names), index=None, format_func=names.get, key=REMOVE_CHOICE,
                                  placeholder="Choose a student")
            st.caption("Their answers leave the dashboard and the CSV, their round closes, and the same profile "
                       "cannot join again. For a fake or duplicate student.")
            st.button("Remove this student", disabled=chosen is None, key="remove-student",
                      on_click=_act, args=(_remove_chosen, store, code))


def _act(action: Callable[..., object], *args: object) -> None:
    """Run an instructor's action in its button's callback; a refusal (a database that cannot be written)
    is shown on the dashboard, since a callback's exception would escape the page's plain-message guard."""
    try:
        action(*args)
    except KqvError as problem:
        st.session_state[CONTROL_PROBLEM] = str(problem)


def _remove_chosen(store: Store, code: str) -> None:
    chosen = st.session_state.get(REMOVE_CHOICE)
    if chosen is not None:
        classroom.remove_student(store, code, chosen)
        st.session_state[REMOVE_CHOICE] = None


def right_label(answered: int, correct_share: float | None) -> str:
    """What a question's bar says: "0% of 3" is a question everyone got wrong, not one nobody answered."""
    if not answered or correct_share is None:
        return "no answers yet"
    return f"{round(100 * correct_share)}% of {answered}"


def accuracy_chart(results: ClassResults) -> alt.Chart:
    """A bar per question (its share answered right), each labelled with that share and how many answered,
    so that 0% right shows as "0% of 3" and a question nobody answered says so."""
    rows = [{"question": f"Q{number}", "item": item.item_id, "answered": item.answered,
             "correct share": item.correct_share or 0.0, "label": right_label(item.answered, item.correct_share)}
            for number, item in enumerate(results.items, start=1)]
    base = alt.Chart(pd.DataFrame(rows)).encode(
        x=alt.X("question:N", title="question", scale=alt.Scale(domain=[row["question"] for row in rows])),
        y=alt.Y("correct share:Q", scale=alt.Scale(domain=[0, 1.15]),
                axis=alt.Axis(format="%", values=[0, .25, .5, .75, 1]), title="answered right"),
        tooltip=["question", "item", "answered", alt.Tooltip("correct share:Q", format=".0%")],
    )
    bars = base.mark_bar(color="#0072B2")  # Okabe-Ito blue: readable with every colour-vision type
    labels = base.mark_text(dy=-8, fontSize=12, color="#222").encode(text="label:N")
    described = "; ".join(f"{row['question']}: {row['label']}" for row in rows)
    return (bars + labels).properties(height=260, description=f"Chart: share answered right per question. {described}.")


@st.fragment(run_every=REFRESH_SECONDS)
def class_dashboard(store: Store, bank: Bank, code: str) -> None:
    """The live results of one class (refreshed every few seconds). Names are shown as table cells only."""
    try:  # a fragment's own reruns are outside the page's plain-message guard
        results = class_results(store, bank, code)
    except KqvError as problem:
        st.error(literal(str(problem)))
        return
    st.subheader(f"{format_code(results.code)}: {literal(results.title)}")
    class_controls(store, results)
    first, second, third = st.columns(3)
    first.metric("Joined", results.joined, help=f"At most {results.max_students} can join.")
    second.metric("Finished", results.finished)
    third.metric("Answers", results.answers)
    st.markdown("#### Per question: how many answered right")
    st.altair_chart(accuracy_chart(results), width="stretch")
    # st.table, not st.dataframe: a static table wraps long prompts and claims instead of cutting them
    st.table(pd.DataFrame([
        {"question": f"Q{number}", "prompt": item.prompt, "item": item.item_id, "answered": item.answered,
         "right": right_label(item.answered, item.correct_share)}
        for number, item in enumerate(results.items, start=1)
    ]), hide_index=True)
    st.markdown("#### Misconceptions held with confidence")
    if results.misconceptions:
        st.table(pd.DataFrame([{"claim": m.claim, "wrong and sure": m.sure, "wrong and fairly sure": m.fairly_sure,
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
    st.caption("In the CSV, " + CSV_LEGEND)
