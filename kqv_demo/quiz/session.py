"""A learner's rounds, end to end: start, resume, answer, summarise, review. Bank + storage, no UI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from kqv_demo.content.loader import Bank
from kqv_demo.errors import UserInputError
from kqv_demo.quiz.items import Checked, Item, check, items_for_claim, not_a_number, parse_number
from kqv_demo.quiz.predict import PREDICTIONS_BY_ITEM, check_observed, prediction_items
from kqv_demo.quiz.rounds import BUILT_IN, RoundSpec, build_round
from kqv_demo.quiz.scheduling import due, schedule
from kqv_demo.quiz.scoring import CONFIDENCE_LABELS, Answer, Summary, summarise
from kqv_demo.storage import Store, StoredAnswer, StoredRound, now


@dataclass(frozen=True)
class RoundState:
    stored: StoredRound
    spec: RoundSpec
    items: list[Item]
    answers: dict[str, StoredAnswer]

    @property
    def next_item(self) -> Item | None:
        if self.stored.finished is not None:  # all answered, or closed when its time ran out
            return None
        return next((item for item in self.items if item.id not in self.answers), None)

    @property
    def deadline(self) -> datetime | None:
        """When a timed round closes: its time limit after the learner started it (naive UTC)."""
        if self.spec.time_limit_minutes is None or self.stored.created is None:
            return None
        return self.stored.created + timedelta(minutes=self.spec.time_limit_minutes)

    def time_left(self, at: datetime | None = None) -> timedelta | None:
        if self.deadline is None:
            return None
        return max(timedelta(0), self.deadline - (at or now()))

    @property
    def timed_out(self) -> bool:
        """Closed by its time limit with questions left unanswered."""
        return self.stored.finished is not None and len(self.answers) < len(self.items)

    @property
    def position(self) -> int:
        return len(self.answers)

    @property
    def finished(self) -> bool:
        return self.next_item is None

    def summary(self) -> Summary:
        return summarise(Answer(a.item_id, a.claim_id, a.correct, a.confidence) for a in self.answers.values())


def spec_from_link(params: Mapping[str, str]) -> RoundSpec:
    """`?round=core-10&seed=3` (or a custom round: `?round=custom&topics=softmax,key&count=5`)."""
    name = params.get("round", "")
    base = BUILT_IN.get(name)
    if base is None and name != "custom":
        known = ", ".join(BUILT_IN)
        raise UserInputError(f"There is no round called {name!r}. Built-in rounds: {known} (or 'custom').")
    update: dict = {}
    if "seed" in params:
        try:
            update["seed"] = int(params["seed"])
        except ValueError:
            raise UserInputError(f"The seed must be a whole number, not {params['seed']!r}.") from None
    for field in ("topics", "verdicts", "kinds", "claims", "origins"):
        if params.get(field):
            update[field] = tuple(part.strip() for part in params[field].split(",") if part.strip())
    if "count" in params:
        update["count"] = params["count"]
    data = {**(base.model_dump() if base else {"id": "custom", "title": "Custom round"}), **update}
    try:
        return RoundSpec.model_validate(data)
    except ValidationError as invalid:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors())
        raise UserInputError(f"This round link is not valid ({problems}).") from None


def link_for(spec: RoundSpec) -> dict[str, str]:
    """Query parameters that rebuild exactly this round."""
    if spec.id in BUILT_IN and spec.model_copy(update={"seed": 0}) == BUILT_IN[spec.id]:
        return {"round": spec.id, "seed": str(spec.seed)}
    params = {"round": "custom", "seed": str(spec.seed), "count": str(spec.count)}
    for field in ("topics", "verdicts", "kinds", "claims", "origins"):
        if getattr(spec, field):
            params[field] = ",".join(getattr(spec, field))
    return params


def items_by_id(bank: Bank, spec: RoundSpec) -> dict[str, Item]:
    items = {item.id: item for claim in bank.claims.values() for item in items_for_claim(claim, spec.seed)}
    items.update({item.id: item for item in prediction_items(spec.seed) if item.claim_id in bank.claims})
    return items


def start_round(store: Store, bank: Bank, learner_id: int, spec: RoundSpec) -> str:
    items = build_round(bank, spec, prediction_items(spec.seed))
    if not items:
        raise UserInputError("No question matches this round's choices. Pick more topics or item types.")
    return store.start_round(learner_id, spec.model_dump(mode="json"), [item.id for item in items])


def load_round(store: Store, bank: Bank, round_key: str) -> RoundState:
    stored = store.round(round_key)
    if stored is None:
        raise UserInputError("This round link is unknown or has expired. Start a new round below.")
    spec = RoundSpec.model_validate(stored.spec)
    if _past_deadline(stored, spec) and stored.finished is None:
        store.finish_round(stored.id)
        stored = store.round(round_key)
    available = items_by_id(bank, spec)
    items = [available[item_id] for item_id in stored.item_ids if item_id in available]
    answers = {answer.item_id: answer for answer in store.answers(stored.id)}
    return RoundState(stored, spec, items, answers)


def _past_deadline(stored: StoredRound, spec: RoundSpec, at: datetime | None = None) -> bool:
    if spec.time_limit_minutes is None or stored.created is None:
        return False
    return (at or now()) > stored.created + timedelta(minutes=spec.time_limit_minutes)


def _refuse_when_time_is_up(store: Store, state: RoundState) -> None:
    if state.spec.time_limit_minutes is None:
        return
    current = store.round(state.stored.key) or state.stored  # the database decides, not a page's old state
    if _past_deadline(current, state.spec):
        store.finish_round(current.id)
        raise UserInputError(f"Time is up: this round closed after {state.spec.time_limit_minutes} minutes, so this "
                             "answer was not accepted. Your earlier answers are kept.")


def submit(store: Store, state: RoundState, item: Item, response: str, confidence: int) -> tuple[Checked, bool]:
    """Check and store an answer. Returns the feedback and whether it was stored now (False: a repeat).

    After a timed round's deadline the answer is refused (UserInputError) and the round is closed.
    """
    _refuse_when_time_is_up(store, state)
    if confidence not in CONFIDENCE_LABELS:
        raise UserInputError("Say how sure you are (1, 2 or 3) before checking your answer.")
    if not response.strip():
        raise UserInputError("Choose or type an answer first.")
    if item.kind == "numeric" and parse_number(response) is None:
        raise UserInputError(not_a_number(response))  # not scored: a typo must not cost the confidence penalty
    checked = check(item, response)
    return checked, _store(store, state, item, response, checked.correct, confidence)


def submit_prediction(store: Store, state: RoundState, item: Item, response: str, confidence: int,
                      result: object) -> tuple[Checked, bool]:
    """Check a prediction against the live demo `result` (computed by the caller) and store it."""
    _refuse_when_time_is_up(store, state)
    if confidence not in CONFIDENCE_LABELS:
        raise UserInputError("Say how sure you are (1, 2 or 3) before the model runs.")
    checked, _observed = check_observed(PREDICTIONS_BY_ITEM[item.id], result, response)
    return checked, _store(store, state, item, response, checked.correct, confidence)


def _store(store: Store, state: RoundState, item: Item, response: str, correct: bool, confidence: int) -> bool:
    """Store a checked answer (moving its claim's review card by the Leitner rule) and close the round when
    it was the last; False when this item was already answered."""
    stored = store.record_answer(state.stored, item.id, item.claim_id, response, correct, confidence,
                                 reschedule=schedule)
    if len(store.answers(state.stored.id)) >= len(state.items):
        store.finish_round(state.stored.id)
    return stored


def review_spec(store: Store, bank: Bank, learner_id: int, at: datetime | None = None) -> RoundSpec | None:
    """A round of the claims due for review now (shakiest first), or None when nothing is due."""
    due_now = [card.claim_id for card in due(store.cards(learner_id), at or now()) if card.claim_id in bank.claims]
    if not due_now:
        return None
    return RoundSpec(id="review", title="Review", claims=tuple(due_now), count=min(len(due_now), 12),
                     kinds=("verdict", "multiple_choice"), seed=int((at or now()).timestamp()) % 100000)
