"""Quiz: rounds with confidence before the reveal, refutation feedback, a summary and spaced review."""

from urllib.parse import urlencode, urlsplit

import streamlit as st

from kqv_demo import classroom
from kqv_demo.errors import UserInputError
from kqv_demo.quiz import session
from kqv_demo.exports.text import readable_subscripts
from kqv_demo.quiz.items import ITEM_KINDS, KIND_LABELS, VERDICT_CHOICES, numeric_rule
from kqv_demo.quiz.rounds import BUILT_IN, RoundSpec
from kqv_demo.quiz.scoring import CONFIDENCE_LABELS
from kqv_demo.claim_source import ORIGIN_LABELS
from kqv_demo.content.schema import TOPICS
from kqv_demo.content.search import VERDICT_LABELS
from kqv_demo.ui.bank import bank, show_content_errors
from kqv_demo.markup import literal
from kqv_demo.storage import StorageUnavailable
from kqv_demo.ui.classroom_views import (
    OWN_PROFILE, confirm_profile, playing_as, removed_notice, time_left_notice, waiting_for_start,
)
from kqv_demo.ui.quiz_views import end_of_round_feedback, feedback_panel, summary_panel
from kqv_demo.ui.store import store
from kqv_demo.demos import DEMOS
from kqv_demo.quiz.predict import PREDICTIONS_BY_ITEM
from kqv_demo.ui.demo_views import demo_result
from kqv_demo.ui.resources import preload, runtime

preload()  # prediction items run live demos: load the models before the first answer
st.title("Quiz")
loaded, db = bank(), store()
show_content_errors(loaded)
params = st.query_params


def go(**changes: str | None) -> None:
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    st.rerun()


# --- a class round (?class=CODE): the instructor's round, one per learner ----------------
joining = None
if "class" in params:
    try:
        joining = classroom.open_class(db, params["class"])
    except UserInputError as problem:
        st.error(literal(str(problem)))

# --- who is playing -------------------------------------------------------------------
learner = db.learner(params["learner"]) if "learner" in params else None
if "learner" in params and learner is None:
    st.warning("This progress link is unknown. Enter a name to start a new profile.")
if learner is None and joining is not None:
    st.info(f"You are joining the class round **{literal(joining.title)}** "
            f"({classroom.format_code(joining.code)}). Enter the name your instructor should see with your "
            "answers; other students never see your results.", icon=":material/groups:")
if learner is None:
    st.markdown(
        "Rounds of questions about attention, drawn from the vetted claim bank. Before each answer "
        "is revealed you say how sure you are: confident mistakes are the ones most worth correcting."
    )
    with st.form("who"):
        name = st.text_input("Your name or a nickname", max_chars=80, help="Stored with your answers on this server.")
        if st.form_submit_button("Start", type="primary"):
            try:
                new_key = db.create_learner(name)
            except (UserInputError, StorageUnavailable) as problem:
                st.error(literal(str(problem)))
            else:
                st.session_state[OWN_PROFILE] = new_key  # made here: no need to ask "is this you?"
                go(learner=new_key)
    st.stop()
learner_id, learner_name = learner


def round_link(learner_key: str, round_key: str) -> None:
    """The link back to this round, shown on its page: a class student who opens the class link again in
    another browser would otherwise start over (the bookmark hint is on the round chooser only)."""
    origin = urlsplit(st.context.url or "")
    base = f"{origin.scheme}://{origin.netloc}" if origin.scheme and origin.netloc else ""
    with st.expander("Your link back to this round", icon=":material/bookmark:"):
        st.caption("Bookmark it or keep a copy: it brings this round and your answers back, in any browser. "
                   "It is yours alone; anyone who has it can answer as you.")
        st.code(f"{base}/quiz?{urlencode({'learner': learner_key, 'r': round_key})}", language=None)


def start_new_profile(class_code: str | None = None) -> None:
    """Leave this profile: the name form, and the class link again when there was one."""
    st.session_state.pop(OWN_PROFILE, None)
    go(learner=None, r=None, **({"class": class_code} if class_code else {}))


if joining is not None:
    # A link can carry someone else's profile (?class=CODE&learner=THEIR_KEY): never join a class under a
    # profile this session did not make or confirm without asking.
    if st.session_state.get(OWN_PROFILE) != params["learner"]:
        answer = confirm_profile(learner_name, joining)
        if answer == "new":
            start_new_profile(joining.code)
        if answer != "me":
            st.stop()
        st.session_state[OWN_PROFILE] = params["learner"]
    try:
        class_round = classroom.join_class(db, joining.code, learner_id)
    except UserInputError as problem:
        st.error(literal(str(problem)))
        if st.button("Join under another name"):
            start_new_profile(joining.code)
        st.stop()
    go(r=class_round, **{"class": None})

# --- playing a round --------------------------------------------------------------------
if "r" in params:
    stored_round = db.round(params["r"])
    if stored_round is not None and stored_round.learner_id != learner_id:
        st.error("This round belongs to another profile.")
        st.stop()
    membership = classroom.admission(db, stored_round.id) if stored_round is not None else None
    class_code = membership.stored_class.code if membership else None
    if membership is not None and membership.removed is not None:
        removed_notice(membership.stored_class, learner_name)
        if st.button("Choose a round"):
            go(r=None)
        st.stop()
    if membership is not None and membership.stored_class.waiting:  # before loading: no clock runs yet
        waiting_for_start(db, membership.stored_class, learner_name)
        if st.button("Not you? Start a new profile", key="not-me"):
            start_new_profile(class_code)
        st.stop()
    try:
        state = session.load_round(db, loaded, params["r"])
    except UserInputError as problem:
        st.warning(literal(str(problem)))
        if st.button("Choose a round"):
            go(r=None)
        st.stop()
    st.subheader(literal(state.spec.title))
    round_link(params["learner"], state.stored.key)
    if playing_as(learner_name):
        start_new_profile(class_code)
    st.progress(state.position / max(1, len(state.items)), text=f"{state.position} of {len(state.items)} answered")
    time_left = state.time_left()
    if time_left is not None and not state.finished:
        time_left_notice(time_left)
    if st.session_state.pop("saved", None) == state.stored.key and not state.finished:  # not above "Round finished"
        st.success("Answer saved. The answers and explanations come at the end of the round.")
    revealed = st.session_state.get("revealed")
    if revealed and revealed[0] == state.stored.key and revealed[1] in state.answers:
        item = next(i for i in state.items if i.id == revealed[1])

        def next_question() -> None:
            if st.button("Next question" if not state.finished else "See my results", type="primary"):
                st.session_state.pop("revealed", None)
                st.rerun()

        feedback_panel(loaded, item, state.answers[item.id], revealed[2], next_question)
        st.stop()
    item = state.next_item
    if item is None:
        summary = state.summary()
        if state.timed_out:
            st.warning(f"Time is up: the round closed after {state.spec.time_limit_minutes} minutes with "
                       f"{state.position} of {len(state.items)} questions answered.")
        summary_panel(loaded, state, summary)
        if state.spec.feedback == "end":
            end_of_round_feedback(loaded, state)
        left, right = st.columns(2)
        if summary.confident_errors and left.button("Review these now", type="primary"):
            spec = RoundSpec(id="review", title="Review of confident mistakes", claims=summary.confident_errors,
                             count=min(12, 2 * len(summary.confident_errors)), kinds=("verdict", "multiple_choice"))
            go(r=session.start_round(db, loaded, learner_id, spec))
        if right.button("Choose another round"):
            go(r=None)
        st.stop()

    st.markdown(f"**Question {state.position + 1}.** " + {
        "verdict": "True, partly true, or false?",
        "multiple_choice": "Choose the best answer.",
        "numeric": "Compute the answer.",
        "spot_the_error": "Which phrase is wrong?",
        "predict": "Predict what the real model will do.",
    }[item.kind])
    closed = False  # by its time limit, while this question was open
    with st.form(f"answer-{state.stored.key}-{item.id}"):
        if item.lead:
            st.markdown(item.lead)
        if item.kind in ("verdict", "spot_the_error"):
            st.markdown(f"> {item.prompt}")
        else:
            st.markdown(item.prompt)
        if item.kind == "numeric":
            response = st.text_input("Your answer" + (f" ({item.unit})" if item.unit else ""), max_chars=40)
            st.caption(literal(numeric_rule(item)))
        else:
            labels = VERDICT_LABELS if item.kind == "verdict" else {}
            response = st.radio("Your answer", item.choices, index=None,
                                format_func=lambda c: labels.get(c, readable_subscripts(c)))
        confidence = st.radio("How sure are you?", list(CONFIDENCE_LABELS), index=None, horizontal=True,
                              format_func=CONFIDENCE_LABELS.get,
                              help="Asked before the reveal. Sure and right: +3; sure and wrong: −6.")
        submit_label = "Save my answer" if state.spec.feedback == "end" else "Check my answer"
        if st.form_submit_button(submit_label, type="primary"):
            try:
                if response is None:
                    raise UserInputError("Choose an answer first.")
                if confidence is None:
                    raise UserInputError("Say how sure you are before checking your answer.")
                if item.kind == "predict":
                    prediction = PREDICTIONS_BY_ITEM[item.id]
                    result = demo_result(DEMOS[prediction.demo_id], runtime(), prediction.prompt, prediction.params)
                    checked, stored = session.submit_prediction(db, state, item, str(response), int(confidence), result)
                else:
                    checked, stored = session.submit(db, state, item, str(response), int(confidence))
            except UserInputError as problem:
                st.error(literal(str(problem)))
                closed = session.load_round(db, loaded, state.stored.key).finished
            except StorageUnavailable as problem:  # "NOT saved": the form keeps the answer for another try
                st.error(literal(str(problem)), icon=":material/error:")
            else:
                if state.spec.feedback == "end":
                    st.session_state["saved"] = state.stored.key
                else:
                    st.session_state["revealed"] = (state.stored.key, item.id, stored)
                st.rerun()
    if closed and st.button("See my results", type="primary"):
        st.rerun()
    st.stop()

# --- choosing a round -------------------------------------------------------------------
st.markdown(f"Hello, **{literal(learner_name)}**. Bookmark this page: its link brings your progress back.")
for stored in db.open_rounds(learner_id)[:3]:
    if st.button(f"Resume “{literal(stored.spec.get('title', 'round'), 80)}” ({len(db.answers(stored.id))} of "
                 f"{len(stored.item_ids)} answered)", key=f"resume-{stored.key}"):
        go(r=stored.key)
finished_rounds = db.finished_rounds(learner_id)
if finished_rounds:
    with st.expander(f"Your finished rounds ({len(finished_rounds)} most recent)"):
        for done in finished_rounds:
            if st.button(f"“{literal(done.title, 80)}”: {done.correct} of {done.items} right, finished "
                         f"{done.finished:%Y-%m-%d}", key=f"results-{done.key}", type="tertiary"):
                go(r=done.key)
review = session.review_spec(db, loaded, learner_id)
if review is not None:
    if st.button(f"Review: {len(review.claims)} claim(s) due", type="primary"):
        go(r=session.start_round(db, loaded, learner_id, review))
else:
    st.caption("Nothing is due for review yet: missed and unsure claims come back here on a schedule.")

if "round" in params:
    try:
        linked = session.spec_from_link(params)
    except UserInputError as problem:
        st.error(literal(str(problem)))
    else:
        st.info(f"You were sent the round **{literal(linked.title)}** (seed {linked.seed}).")
        if st.button("Start this round", type="primary"):
            go(r=session.start_round(db, loaded, learner_id, linked), round=None, seed=None)

st.subheader("Start a round")
ROUNDS_PER_ROW = 3  # six rounds side by side would squeeze each description into a sliver
built_in = list(BUILT_IN.values())
for row in range(0, len(built_in), ROUNDS_PER_ROW):
    for column, spec in zip(st.columns(ROUNDS_PER_ROW), built_in[row:row + ROUNDS_PER_ROW]):
        with column.container(border=True):
            st.markdown(f"**{spec.title}**")
            st.caption(spec.description)
            if st.button("Start", key=f"start-{spec.id}"):
                go(r=session.start_round(db, loaded, learner_id, spec))
with st.expander("Build your own round"):
    with st.form("custom"):
        source = st.radio("Claims from", ["all", *ORIGIN_LABELS], horizontal=True,
                          format_func=lambda key: "All" if key == "all" else ORIGIN_LABELS[key])
        topics = st.multiselect("Topics (none = all)", TOPICS)
        verdicts = st.multiselect("Verdicts (none = all)", list(VERDICT_CHOICES), format_func=VERDICT_LABELS.get)
        kinds = st.multiselect("Item types", list(ITEM_KINDS), default=["verdict", "multiple_choice"],
                               format_func=KIND_LABELS.get)
        count = st.number_input("Questions", 1, 50, 10)
        seed = st.number_input("Seed (the same seed gives the same round)", 0, 999_999, 0)
        if st.form_submit_button("Start my round"):
            try:
                spec = RoundSpec(id="custom", title="Custom round", topics=tuple(topics), verdicts=tuple(verdicts),
                                 kinds=tuple(kinds) or ("verdict",), count=int(count), seed=int(seed),
                                 origins=() if source == "all" else (source,))
                go(r=session.start_round(db, loaded, learner_id, spec))
            except UserInputError as problem:
                st.error(literal(str(problem)))
