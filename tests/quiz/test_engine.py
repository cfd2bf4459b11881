"""The quiz engine: items from the bank, checking, CBM, calibration, rounds and Leitner scheduling."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from kqv_demo.content.loader import load_bank
from kqv_demo.quiz.items import check, items_for_claim, parse_number
from kqv_demo.quiz.predict import prediction_items
from kqv_demo.quiz.resolve import round_items
from kqv_demo.quiz.rounds import BUILT_IN, MAX_ROUND_ITEMS, RoundSpec, build_round, matching_claims
from kqv_demo.quiz.scheduling import INTERVALS, Card, due, next_box, schedule
from kqv_demo.quiz.scoring import Answer, cbm_mark, summarise
from kqv_demo.quiz.session import review_spec
from kqv_demo.storage import Store
from kqv_demo.storage import now as storage_now


@pytest.fixture(scope="module")
def bank():
    return load_bank(dialogue=False)


def test_every_claim_gives_a_verdict_and_a_multiple_choice_item(bank):
    for claim in bank.claims.values():
        kinds = [item.kind for item in items_for_claim(claim)]
        assert kinds[:2] == ["verdict", "multiple_choice"]
        assert ("numeric" in kinds) == (claim.quiz.numeric is not None)


def test_every_item_kind_is_checked_right_and_wrong(bank):
    seen = set()
    for claim in bank.claims.values():
        for item in items_for_claim(claim):
            seen.add(item.kind)
            if item.kind == "numeric":
                target = float(item.answer)
                assert check(item, str(target)).correct
                assert check(item, str(target + 2 * item.tolerance + 1)).correct is False
                assert check(item, "banana").correct is False
                continue
            assert check(item, item.answer).correct
            wrong = next(choice for choice in item.choices if choice != item.answer)
            result = check(item, wrong)
            assert result.correct is False and result.feedback
            with pytest.raises(ValueError):
                check(item, "not a choice")
    assert seen == {"verdict", "multiple_choice", "numeric", "spot_the_error"}


def test_multiple_choice_feedback_is_the_chosen_options(bank):
    claim = bank.claims["kl-divergence-compares-queries-and-keys"]
    item = items_for_claim(claim)[1]
    for option in claim.quiz.multiple_choice.options:
        assert check(item, option.text).feedback == option.feedback


def test_kl_numeric_item_accepts_the_right_number_in_several_spellings(bank):
    item = next(i for i in items_for_claim(bank.claims["worked-kl-example-gives-0-135"]) if i.kind == "numeric")
    assert check(item, "0.0946").correct and check(item, " 0,0946 ").correct and check(item, "9.46e-2").correct
    assert not check(item, "0.135").correct
    assert parse_number("nan") is None and parse_number("inf") is None and parse_number("") is None


def test_option_order_is_shuffled_reproducibly(bank):
    claim = bank.claims["kl-divergence-compares-queries-and-keys"]
    orders = {items_for_claim(claim, seed)[1].choices for seed in range(12)}
    assert len(orders) > 1
    assert items_for_claim(claim, 5)[1].choices == items_for_claim(claim, 5)[1].choices


def test_certainty_based_marks():
    assert [cbm_mark(True, c) for c in (1, 2, 3)] == [1, 2, 3]
    assert [cbm_mark(False, c) for c in (1, 2, 3)] == [0, -2, -6]
    with pytest.raises(ValueError):
        cbm_mark(True, 4)


def test_summary_calibration_and_confident_errors_first():
    answers = [
        Answer("a:verdict", "a", True, 3), Answer("b:verdict", "b", False, 3), Answer("c:verdict", "c", False, 2),
        Answer("d:verdict", "d", True, 1), Answer("e:verdict", "e", False, 1), Answer("f:verdict", "f", True, 3),
    ]
    summary = summarise(answers)
    assert (summary.answered, summary.correct) == (6, 3)
    assert summary.cbm_total == 3 - 6 - 2 + 1 + 0 + 3
    assert summary.cbm_max == 18
    rows = {row.confidence: row for row in summary.calibration}
    assert rows[3].accuracy == pytest.approx(2 / 3) and rows[1].accuracy == 0.5 and rows[2].accuracy == 0
    assert summary.confident_errors == ("b", "c")
    assert summarise([]).accuracy is None


def test_same_seed_same_round_other_seed_other_order(bank):
    spec = BUILT_IN["everything"].model_copy(update={"count": 15, "seed": 7})
    first = [item.id for item in build_round(bank, spec)]
    assert first == [item.id for item in build_round(bank, spec)]
    other = [item.id for item in build_round(bank, spec.model_copy(update={"seed": 8}))]
    assert other != first and len(set(first)) == 15


def test_rounds_respect_their_filters_and_spread_over_claims(bank):
    core = build_round(bank, BUILT_IN["core-10"])
    assert len(core) == 10 and all(bank.claims[i.claim_id].core for i in core)
    assert len({i.claim_id for i in core}) == 10, "breadth first: ten different claims"
    kl = build_round(bank, BUILT_IN["kl-and-dot-products"])
    assert all({"kl-divergence", "dot-product", "softmax"} & set(bank.claims[i.claim_id].topics) for i in kl)
    numeric_only = build_round(bank, RoundSpec(id="n", title="n", kinds=("numeric",), count=200))
    assert numeric_only and all(i.kind == "numeric" for i in numeric_only)
    everything = build_round(bank, BUILT_IN["everything"])
    assert len(everything) == sum(len(items_for_claim(c)) for c in bank.claims.values())


def test_everything_is_every_item_of_the_bank_predictions_included(bank):
    """The round says "every item in the bank": it must stay so as the bank grows (raise MAX_ROUND_ITEMS)."""
    expected = {item.id for claim in bank.claims.values() for item in items_for_claim(claim)}
    expected |= {item.id for item in prediction_items() if item.claim_id in bank.claims}
    everything = [item.id for item in round_items(bank, BUILT_IN["everything"])]
    assert len(everything) == len(set(everything)) and set(everything) == expected
    assert len(expected) < MAX_ROUND_ITEMS


def test_rounds_draw_from_the_dialogue_the_public_posts_or_both(bank):
    public = {claim.id for claim in bank.claims.values() if claim.origin == "public"}
    dialogue = set(bank.claims) - public
    assert public and dialogue
    spec = BUILT_IN["common-misconceptions"]
    assert set(matching_claims(bank, spec)) == public
    round_ = build_round(bank, spec)
    assert len(round_) == spec.count and len({item.claim_id for item in round_}) == spec.count
    assert {item.claim_id for item in round_} <= public
    only_dialogue = RoundSpec(id="d", title="d", origins=("dialogue",), count=MAX_ROUND_ITEMS)
    assert {item.claim_id for item in build_round(bank, only_dialogue)} == dialogue
    both = RoundSpec(id="b", title="b", origins=("dialogue", "public"), count=MAX_ROUND_ITEMS)
    assert build_round(bank, both) == build_round(bank, both.model_copy(update={"origins": ()}))
    with pytest.raises(ValueError):
        RoundSpec(id="x", title="x", origins=("reddit",))


def test_every_built_in_round_is_full_and_spread_over_its_claims(bank):
    for spec in BUILT_IN.values():
        if spec.id == "everything":
            continue
        items = round_items(bank, spec)
        all_of_it = spec.model_copy(update={"count": MAX_ROUND_ITEMS})
        claims_with_items = {item.claim_id for item in round_items(bank, all_of_it)}
        assert len(items) == spec.count, spec.id
        assert len({item.claim_id for item in items}) == min(spec.count, len(claims_with_items)), spec.id


def test_a_round_with_no_matching_claims_is_empty(bank):
    spec = RoundSpec(id="x", title="x", claims=("no-such-claim",))
    assert matching_claims(bank, spec) == [] and build_round(bank, spec) == []


def test_leitner_boxes():
    assert next_box(None, False, 3) == 1 and next_box(None, True, 1) == 1 and next_box(None, True, 3) == 2
    assert next_box(3, True, 2) == 4 and next_box(5, True, 3) == 5
    assert next_box(4, True, 1) == 4 and next_box(4, False, 1) == 1
    now = datetime(2026, 11, 28, 12, 0)
    card = schedule(None, "x", False, 3, now)
    assert (card.box, card.due) == (1, now + INTERVALS[1])
    card = schedule(card, "x", True, 3, now)
    assert card.box == 2 and card.due == now + INTERVALS[2]


def test_due_cards_shakiest_first():
    now = datetime(2026, 11, 28)
    cards = [Card("a", 3, now - timedelta(days=1)), Card("b", 1, now), Card("c", 1, now + timedelta(hours=1)),
             Card("d", 1, now - timedelta(days=2))]
    assert [c.claim_id for c in due(cards, now)] == ["d", "b", "a"]


def test_numeric_feedback_prints_numbers_in_full():
    from kqv_demo.quiz.items import Item, check, format_number

    assert [format_number(v) for v in (3540096.0, 0.0946, -0.5, 30.0)] == ["3540096", "0.0946", "-0.5", "30"]
    item = Item(id="x:numeric", claim_id="x", kind="numeric", prompt="How many?", answer="3540096.0", tolerance=0.5)
    feedback = check(item, "12").feedback
    assert "3540096" in feedback and "e+" not in feedback


def test_numbers_are_read_as_learners_write_them_and_the_reading_is_said():
    """A decimal comma, thousands separators and spaces are read; when the typed text is not the number as
    we print it, the feedback says how it was read (issue #14, 3)."""
    from kqv_demo.quiz.items import Item, numeric_rule

    readings = {"0,0946": 0.0946, "3,540,096": 3540096.0, "3 540 096.5": 3540096.5, "3,540,096.5": 3540096.5,
                "1,5": 1.5, "1.2.3": None, "abc": None, "0.1.": None}
    assert {text: parse_number(text) for text in readings} == readings
    item = Item(id="x:numeric", claim_id="x", kind="numeric", prompt="How much?", answer="1.5", tolerance=0.001)
    assert "read as 1.5" in check(item, "1,5").feedback and check(item, "1,5").correct
    assert "read as" not in check(item, "1.5").feedback
    assert "±0.001" in numeric_rule(item)


def test_a_non_number_is_refused_before_it_is_scored_or_stored(bank, tmp_path):
    """"abc" must not be stored as a wrong answer that costs the confidence penalty."""
    from kqv_demo.errors import UserInputError
    from kqv_demo.quiz import session
    from kqv_demo.storage import Store

    store = Store(f"sqlite:///{tmp_path / 'numeric.sqlite3'}")
    learner_id, _name = store.learner(store.create_learner("Ada"))
    spec = RoundSpec(id="n", title="n", kinds=("numeric",), count=2)
    state = session.load_round(store, bank, session.start_round(store, bank, learner_id, spec))
    item = state.next_item
    with pytest.raises(UserInputError, match="not a number"):
        session.submit(store, state, item, "abc", 3)
    assert store.answers(state.stored.id) == []
    checked, stored = session.submit(store, state, item, item.answer, 2)
    assert checked.correct and stored and len(store.answers(state.stored.id)) == 1


def test_a_spot_the_error_text_says_who_wrote_it_and_about_what(bank):
    """Issue #14, 9: "This document provides an overview ... NoSQL databases" alone does not say which
    document; every spot-the-error item is introduced by where its text comes from."""
    spots = [item for claim in bank.claims.values() for item in items_for_claim(claim) if item.kind == "spot_the_error"]
    assert len(spots) > 50 and all(item.lead for item in spots)
    nosql = next(item for item in spots if item.claim_id == "slides-are-about-nosql-databases")
    assert "slides" in nosql.lead and "Understanding keys, queries & values" in nosql.lead
    kl = next(item for item in spots if item.claim_id == "kl-divergence-compares-queries-and-keys")
    assert kl.lead == "The assistant in the source dialogue wrote:"
    public = next(item for item in spots if bank.claims[item.claim_id].origin == "public")
    assert "source dialogue" not in public.lead  # a bank sentence is not passed off as a quote


def test_calibration_advice_says_over_or_under_confident_by_the_cbm_thresholds():
    """Sure pays off above 80 % right, fairly sure from 2/3 (from the marks: +3/-6, +2/-2, +1/0)."""
    from kqv_demo.quiz.scoring import BEST_RANGE, calibration_advice

    assert BEST_RANGE[2] == pytest.approx((2 / 3, 0.8)) and BEST_RANGE[3][0] == pytest.approx(0.8)

    def advice(*answers: tuple[bool, int]) -> str:
        return calibration_advice(summarise(Answer(f"i{n}", "c", right, level)
                                            for n, (right, level) in enumerate(answers)))

    over = advice((True, 3), (True, 3), (True, 3), (False, 3))  # 75 % right when sure
    assert "over-confident" in over and "right 3 of 4 times" in over and "under" not in over
    under = advice((True, 1), (True, 1), (True, 1))  # always right when unsure
    assert "under-confident" in under and "Fairly sure" in under
    assert "matched" in advice((True, 3), (True, 3), (True, 3), (True, 3), (True, 3), (False, 1))
    assert "rough guide" in over and advice() == ""


def test_review_comes_back_after_the_readmes_1_3_7_14_30_days():
    # the README's numbers written out, not read from INTERVALS: a changed interval must fail here
    start = datetime(2026, 11, 28, 12, 0)
    card, waits = None, []
    for _ in range(6):  # right and sure each time: up one box, to the top box
        card = schedule(card, "x", True, 3, start)
        waits.append((card.due - start).days)
    assert waits == [3, 7, 14, 30, 30, 30]
    assert (schedule(None, "x", False, 3, start).due - start).days == 1  # missed: tomorrow
    assert (schedule(None, "x", True, 1, start).due - start).days == 1  # right but unsure: tomorrow
    assert (schedule(card, "x", False, 2, start).due - start).days == 1  # a top-box claim missed: back to 1 day


def test_the_review_button_offers_exactly_the_claims_due_shakiest_first(bank, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'review.sqlite3'}")
    learner_id, _name = store.learner(store.create_learner("Ada"))
    missed, known, other = sorted(bank.claims)[:3]
    stored = store.round(store.start_round(learner_id, {"id": "x"}, [f"{c}:verdict" for c in (missed, known, other)]))
    store.record_answer(stored, f"{missed}:verdict", missed, "x", False, 3, reschedule=schedule)  # box 1: 1 day
    store.record_answer(stored, f"{known}:verdict", known, "x", True, 3, reschedule=schedule)  # box 2: 3 days
    answered = storage_now()
    assert review_spec(store, bank, learner_id, at=answered) is None  # nothing due yet
    after_two_days = review_spec(store, bank, learner_id, at=answered + timedelta(days=2))
    assert after_two_days is not None and after_two_days.claims == (missed,)
    after_four_days = review_spec(store, bank, learner_id, at=answered + timedelta(days=4))
    assert after_four_days is not None and after_four_days.claims == (missed, known)  # box 1 before box 2
    assert after_four_days.count == 2 and set(after_four_days.kinds) == {"verdict", "multiple_choice"}
    store.engine.dispose()
