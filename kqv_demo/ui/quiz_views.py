"""Quiz feedback and the end-of-round summary."""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import pandas as pd
import streamlit as st

from kqv_demo.content.loader import Bank
from kqv_demo.content.search import VERDICT_LABELS
from kqv_demo.demos import DEMOS
from kqv_demo.exports.text import readable_subscripts
from kqv_demo.quiz.items import Item, check, format_number
from kqv_demo.quiz.predict import PREDICTIONS_BY_ITEM, check_observed
from kqv_demo.quiz.scoring import CONFIDENCE_LABELS, Summary, calibration_advice
from kqv_demo.quiz.session import RoundState
from kqv_demo.storage import StoredAnswer
from kqv_demo.ui.claim_card import claim_card
from kqv_demo.markup import literal, shortened


def _label(item: Item, value: str) -> str:
    """An answer as plain text (for tables): a verdict's label, else the answer itself (typed subscripts
    shown as Unicode: "q_i" as "qᵢ")."""
    return VERDICT_LABELS.get(value, value) if item.kind == "verdict" else readable_subscripts(value)


def _shown(item: Item, value: str) -> str:
    """An answer for Markdown. Our own choices keep their Markdown; anything else (a typed number,
    a stored answer that is not one of the choices) is shown literally."""
    if (item.kind == "verdict" and value in VERDICT_LABELS) or value in item.choices:
        return _label(item, value)
    return literal(value)


def prediction_feedback(item: Item, answer: StoredAnswer, next_step: Callable[[], None] = lambda: None) -> None:
    """What the model actually did, next to what the learner predicted, with the live demo."""
    from kqv_demo.ui.demo_views import demo_inline, demo_result
    from kqv_demo.ui.resources import runtime

    prediction = PREDICTIONS_BY_ITEM[item.id]
    demo, models = DEMOS[prediction.demo_id], runtime()
    result = demo_result(demo, models, prediction.prompt, prediction.params)
    checked, observed = check_observed(prediction, result, answer.response)
    if checked.correct:
        st.success(f"You predicted it: **{literal(observed)}**.")
    else:
        st.error(f"You predicted **{literal(answer.response)}**; the model showed **{literal(observed)}**.")
        if answer.confidence == 3:
            st.warning("You were sure, and the model did otherwise: the most valuable kind of surprise. "
                       "It will come back for review tomorrow.")
    st.markdown(checked.feedback)
    next_step()
    with st.container(border=True):
        st.markdown(f"#### Live: {demo.title}")
        demo_inline(demo, models, prediction.prompt, prediction.params)


def feedback_panel(bank: Bank, item: Item, answer: StoredAnswer, stored_now: bool,
                   next_step: Callable[[], None] = lambda: None) -> None:
    """The verdict and its short feedback, then `next_step` (the "Next question" button: within one phone
    screen of the verdict), then the claim card and the live demo below it."""
    if not stored_now:
        st.info("You had already answered this question; your first answer is the one that counts.")
    if item.kind == "predict":
        prediction_feedback(item, answer, next_step)
        claim = bank.claims.get(item.claim_id)
        if claim is not None:
            with st.expander("The claim behind this question"):
                claim_card(claim, bank.quote_lines.get(claim.id), bank.dialogue)
        return
    if answer.correct:
        st.success(f"Right: **{_shown(item, answer.response)}**.")
    else:
        right = item.answer if item.kind != "numeric" else f"{format_number(float(item.answer))} {item.unit}".strip()
        st.error(f"Not quite. You answered **{_shown(item, answer.response)}**; "
                 f"the answer is **{_shown(item, right)}**.")
        if answer.confidence == 3:
            st.warning(
                "You were sure, and it was wrong: this is the most valuable kind of mistake to correct. "
                "It will come back for review tomorrow."
            )
    st.markdown(check(item, answer.response).feedback)  # a verdict item's feedback is its explanation
    next_step()
    claim = bank.claims.get(item.claim_id)
    if claim is None:
        return
    with st.container(border=True):
        st.markdown("#### The claim behind this question")
        claim_card(claim, bank.quote_lines.get(claim.id), bank.dialogue)
        if claim.demo and claim.demo.id in DEMOS and st.toggle("Show the live demo here", key=f"demo-{item.id}"):
            from kqv_demo.ui.demo_views import demo_inline
            from kqv_demo.ui.resources import runtime

            demo_inline(DEMOS[claim.demo.id], runtime(), claim.demo.prompt, dict(claim.demo.params))


def calibration_rows(summary: Summary) -> list[dict[str, object]]:
    """The calibration table as the learner reads it: counts and percentages, and "no answers" for a level
    never used (not a 0 that reads as "always wrong")."""
    return [{"confidence": CONFIDENCE_LABELS[row.confidence], "answered": row.answered,
             "right": f"{row.correct} of {row.answered} ({row.accuracy:.0%})" if row.answered else "no answers"}
            for row in summary.calibration]


def summary_panel(bank: Bank, state: RoundState, summary: Summary) -> None:
    st.success("Round finished.")
    first, second, third = st.columns(3)
    first.metric("Score", f"{summary.correct} / {summary.answered}")
    second.metric("Accuracy", f"{summary.accuracy:.0%}" if summary.accuracy is not None else "–")
    third.metric("Certainty-based score", f"{summary.cbm_total} / {summary.cbm_max}",
                 help="Right: +1 / +2 / +3 by confidence; wrong: 0 / −2 / −6.")
    if summary.confident_errors:
        st.markdown("#### Misconceptions you held with confidence")
        # a Markdown list, not page links: a link's label does not wrap, and long claims ran off the page
        st.markdown("\n".join(
            f"- **{VERDICT_LABELS[claim.verdict]}:** {' '.join(claim.refutation.claim.split())} "
            f"([the claim](./claims?claim={claim.id}))"
            for claim in (bank.claims.get(claim_id) for claim_id in summary.confident_errors) if claim))
    else:
        st.markdown("No confident mistakes in this round.")
    st.markdown("#### Calibration: how often you were right at each confidence")
    st.markdown(calibration_advice(summary))
    used = [{"confidence": CONFIDENCE_LABELS[row.confidence], "answered": row.answered, "accuracy": row.accuracy}
            for row in summary.calibration if row.answered]
    if used:
        st.altair_chart(_calibration_chart(used), width="content")
    st.table(pd.DataFrame(calibration_rows(summary)), hide_index=True)
    with st.expander("All your answers"):
        _all_answers(state)


def _calibration_chart(used: list[dict[str, object]]) -> alt.Chart:
    return (
        alt.Chart(pd.DataFrame(used))
        .mark_bar(color="#0072B2")
        .encode(
            x=alt.X("confidence:N", sort=list(CONFIDENCE_LABELS.values()), title="how sure you said you were",
                    scale=alt.Scale(domain=list(CONFIDENCE_LABELS.values()))),
            y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title="answers right"),
            tooltip=["confidence", "answered", alt.Tooltip("accuracy:Q", format=".0%")],
        )
        .properties(width=360, height=220, description="Chart: answers right at each confidence. " + "; ".join(
            f"{row['confidence']}: {row['accuracy']:.0%} of {row['answered']}" for row in used) + ".")
    )


def _all_answers(state: RoundState) -> None:
    """A data frame, not st.table: the learner's own typed answers are shown as plain cells, never Markdown."""
    table = [{"question": shortened(item.prompt, 90), "your answer": _label(item, state.answers[item.id].response)[:60],
              "right": "yes" if state.answers[item.id].correct else "no",
              "confidence": CONFIDENCE_LABELS[state.answers[item.id].confidence]}
             for item in state.items if item.id in state.answers]
    st.dataframe(pd.DataFrame(table), hide_index=True)


def end_of_round_feedback(bank: Bank, state: RoundState) -> None:
    """For rounds with feedback at the end: every question, the learner's answer and its full feedback."""
    st.markdown("#### Each question, with its answer and explanation")
    for number, item in enumerate(state.items, start=1):
        answer = state.answers.get(item.id)
        verdict = "not answered" if answer is None else ("right" if answer.correct else "wrong")
        with st.expander(f"{number}. ({verdict}) {shortened(item.prompt, 90)}"):
            if answer is not None:
                feedback_panel(bank, item, answer, True)
            elif item.kind != "predict":
                right = (item.answer if item.kind != "numeric"
                         else f"{format_number(float(item.answer))} {item.unit}".strip())
                st.markdown(f"The answer is **{_shown(item, right)}**. {item.explanation}")
