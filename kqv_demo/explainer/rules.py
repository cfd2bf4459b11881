"""The chat's decision: an ordered list of small named rules, each returning a decision or passing.

Every threshold lives in `Thresholds`. The order encodes the product's priorities: never agree with a
misconception, never tell a learner who is right that they are wrong, and when unsure, explain rather than
judge. `ask --jsonl` reports which rule fired (`rule`) and the statement it is about (`statement`).

    decision = decide(reading, THRESHOLDS)
    decision.rule, decision.stance, decision.candidate.statement.text
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from kqv_demo.explainer.reading import Candidate, Reading
from kqv_demo.explainer.stance import conflicting_terms, contrast_clauses, polarity

Stance = Literal["refute", "affirm", "explain", "decline"]


@dataclass(frozen=True)
class Thresholds:
    candidates: int = 4  # statements read by the stance model per message (their opposites included)
    # retrieval similarity (MiniLM cosine)
    decline_below: float = 0.40  # nothing vetted is this close: off topic
    needs_subject_below: float = 0.58  # a middling match counts only if the message names the subject
    judge_similarity: float = 0.55  # a statement must be this close before we judge the message on it
    vetted_answer_at_least: float = 0.62  # below this, an on-topic message gets the nearest page, so labelled
    # stance model probabilities
    refute_asserts: float = 0.85  # the message asserts the misconception at least this surely...
    refute_margin: float = 0.10  # ...and asserts it this much more surely than its correction
    wording_lead: float = -0.05  # ...and is about as close to its wordings as to its correction's, or closer
    question_refute_asserts: float = 0.97  # a wh-question must take the misconception for granted this surely...
    question_refute_similarity: float = 0.80  # ...and be this close to it ("why does attention use KL?")
    denial_margin: float = 0.02  # never refuted: a message that all but repeats (known_phrasing_similarity) a
    # vetted wording that denies the misconception, or repeats (verbatim_similarity) one that only asks about
    # it, this much closer to it than to any that states it
    known_phrasing_similarity: float = 0.92  # a message this close to a vetted wording of a misconception...
    known_phrasing_asserts: float = 0.50  # ...that the model reads as asserting it at least this surely...
    verbatim_similarity: float = 0.98  # (a message this close repeats the vetted wording: the bank,
    # which says what that wording does, decides, whatever the model reads)
    known_phrasing_lead: float = 0.05  # ...and that is this much closer to it than to its correction, states it
    truth_rival_asserts: float = 0.50  # a vetted truth the message may be asserting blocks any refutation
    truth_rival_slack: float = 0.0  # (if it is at least as similar as the misconception)
    deny_at_least: float = 0.80  # the learner denies a misconception: say they are right
    negated_restatement_similarity: float = 0.85  # or restates it this closely with a negation added
    affirm_asserts: float = 0.92  # agree only when the message asserts a truth this surely...
    affirm_similarity: float = 0.68  # ...is this close to it...
    affirm_misconception_at_most: float = 0.10  # ...and asserts no misconception above this
    topic_preference: float = 0.03  # an open question goes to a topic page this close to the best statement


THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Decision:
    rule: str
    stance: Stance
    candidate: Candidate | None = None  # the statement the stance is about
    topic_id: str | None = None  # explained from this topic page instead of a statement
    nearest: bool = False  # explained from the nearest page, with no vetted answer for exactly this


Rule = Callable[[Reading, Thresholds], Decision | None]


def off_topic(reading: Reading, limits: Thresholds) -> Decision | None:
    """Nothing vetted is close, or only loosely close and the message does not name the subject."""
    return (Decision("off-topic", "decline")
            if is_off_topic(reading.best_similarity, reading.on_subject, limits) else None)


def is_off_topic(best_similarity: float, on_subject: bool, limits: Thresholds) -> bool:
    return best_similarity < limits.decline_below or (best_similarity < limits.needs_subject_below and not on_subject)


def asserts_misconception(reading: Reading, limits: Thresholds) -> Decision | None:
    """Refute: the message asserts (or takes for granted) a misconception, more surely than its correction,
    and no vetted truth that it might be saying instead is as close."""
    for candidate in reading.of_kind("misconception"):
        cues = reading.parts[candidate.part].cues
        if not _may_refute(reading, candidate, limits) or _repeats_a_non_asserting_wording(candidate, limits):
            continue
        if _open_question(cues) and not _PRESUPPOSING_QUESTION.search(cues.core):
            continue  # "what do the keys represent?" asks; "why does attention use KL?" takes it for granted
        opposite = _opposite(reading, candidate)
        # The model reads true statements on the same subject as asserting the misconception (sentences of
        # public tutorials, "before softmax, each score is divided by the square root of the key dimension"
        # as "dividing by sqrt(d_k) changes nothing", at 0.87-0.99): the message must be about as close
        # to the misconception's wordings as to its correction's (within -wording_lead), or closer
        if (opposite is not None
                and candidate.asserting_similarity - opposite.asserting_similarity < limits.wording_lead):
            continue
        if cues.wh_question and candidate.similarity < limits.question_refute_similarity:
            continue
        needed = limits.question_refute_asserts if cues.wh_question else limits.refute_asserts
        if candidate.asserts < needed:
            continue
        if opposite is not None and candidate.asserts - opposite.asserts < limits.refute_margin:
            continue
        if _truth_rival(reading, candidate, limits):
            continue
        return Decision("asserts-misconception", "refute", candidate)
    return None


def states_known_phrasing(reading: Reading, limits: Thresholds) -> Decision | None:
    """Refute: the message all but repeats a vetted wording of a misconception (not of its correction), and
    the model leans to reading it as asserting it, or it repeats the wording outright (verbatim_similarity).
    The stance model is unsure on some wordings it was trained on; a near-verbatim match with the
    misconception's phrasings, and clearly not with its correction's, settles those. Only the misconception
    closest to the message: a message nearer another one is about that one ("attention does not compare
    queries and keys with KL divergence" is nearer the KL claim than a wording of another claim that
    mentions KL)."""
    for candidate in reading.of_kind("misconception")[:1]:
        said = reading.parts[candidate.part].cues.core
        if (candidate.similarity < limits.known_phrasing_similarity or candidate.kind_margin > 0
                or (candidate.asserts < limits.known_phrasing_asserts
                    and candidate.similarity < limits.verbatim_similarity)
                or polarity(said) != polarity(candidate.closest_line)  # it must repeat the wording, negation too
                or not _may_refute(reading, candidate, limits)):
            continue
        opposite = _opposite(reading, candidate)
        if (opposite is not None
                and candidate.similarity - opposite.asserting_similarity < limits.known_phrasing_lead):
            continue
        return Decision("states-known-phrasing", "refute", candidate)
    return None


def _may_refute(reading: Reading, candidate: Candidate, limits: Thresholds) -> bool:
    """What every refutation needs: the message is close to the misconception; it is not a neutral
    question ("Is attention KL-based?"); and it does not negate where the misconception does not. (A
    message that all but repeats a vetted wording that states it is judged as that wording is, question
    mark or not; any other open question is refuted only when it takes the misconception for granted.)"""
    cues = reading.parts[candidate.part].cues
    return (candidate.similarity >= limits.judge_similarity and not _neutral_question(cues)
            and not _polarity_mismatch(cues.core, candidate))


def denies_misconception(reading: Reading, limits: Thresholds) -> Decision | None:
    """The learner says a misconception is wrong: explain, and tell them they are right about that. Either
    the model reads a denial, or the message restates the misconception closely with a negation added
    ("attention does not compare queries and keys with KL divergence, right?"), which the model misreads
    as asserting it; not when the message also asserts something else in its place ("..., but ...")."""
    for candidate in reading.of_kind("misconception"):
        if candidate.similarity < limits.judge_similarity:
            continue
        if candidate.denies >= limits.deny_at_least:
            return Decision("denies-misconception", "explain", candidate)
        cues = reading.parts[candidate.part].cues
        if (cues.negated and not cues.wh_question and contrast_clauses(cues.core) is None
                and candidate.asserting_similarity >= limits.negated_restatement_similarity
                and _polarity_mismatch(cues.core, candidate)):
            return Decision("denies-misconception", "explain", candidate)
    return None


def asserts_truth(reading: Reading, limits: Thresholds) -> Decision | None:
    """Agree, under a strict rule: a statement (not an open question) that surely asserts a vetted truth,
    is close to it, shares its polarity and terms, asserts no misconception, and is no closer to a wording
    that states a misconception than to the truth. (The model can misread a misconception's own wording,
    "the model outputs a probability for every word, called the logits", as asserting a truth near it;
    agreeing with a misconception is the failure this chat exists to prevent.)"""
    misconceptions = reading.of_kind("misconception")
    if any(candidate.asserts > limits.affirm_misconception_at_most for candidate in misconceptions):
        return None
    nearest_wrong_wording = max((candidate.asserting_similarity for candidate in misconceptions),
                                default=-1.0)
    for candidate in reading.of_kind("truth"):
        cues = reading.parts[candidate.part].cues
        said = cues.core
        if (candidate.asserts >= limits.affirm_asserts and candidate.similarity >= limits.affirm_similarity
                and candidate.similarity >= nearest_wrong_wording
                and not (cues.question and not cues.confirmation)
                and polarity(said) == polarity(candidate.statement.text)
                and not conflicting_terms(said, candidate.statement.text)):
            return Decision("asserts-truth", "affirm", candidate)
    return None


def vetted_explanation(reading: Reading, limits: Thresholds) -> Decision | None:
    """A question (or a statement we do not judge) close to something vetted: explain it, from the topic
    page when the message asks openly and a page answers it about as well as the closest statement."""
    closest = reading.candidates[0] if reading.candidates else None
    page, page_similarity = reading.topic_pages[0] if reading.topic_pages else (None, -1.0)
    best = max(closest.similarity if closest else -1.0, page_similarity)
    if best < limits.vetted_answer_at_least:
        return None
    if page is not None and (closest is None or (reading.cues.question and not reading.cues.confirmation
                                                 and page_similarity >= closest.similarity - limits.topic_preference)):
        return Decision("explains-topic", "explain", topic_id=page)
    return Decision("explains-vetted", "explain", closest)


def nearest_page(reading: Reading, limits: Thresholds) -> Decision:
    """On topic, but nothing vetted answers exactly this: say so, and give the nearest page as nearest."""
    closest = reading.candidates[0] if reading.candidates else None
    page = reading.topic_pages[0][0] if reading.topic_pages else None
    return Decision("nearest-page", "explain", closest, topic_id=page, nearest=True)


RULES: tuple[Rule, ...] = (off_topic, asserts_misconception, states_known_phrasing, denies_misconception,
                           asserts_truth,
                           vetted_explanation)


def decide(reading: Reading, limits: Thresholds = THRESHOLDS) -> Decision:
    for rule in RULES:
        decision = rule(reading, limits)
        if decision is not None:
            return decision
    return nearest_page(reading, limits)


_PRESUPPOSING_QUESTION = re.compile(
    r"^\W*(?:(?:and|so|but|ok|okay|then)\W+)*(?:why|how come|how)\b(?!\s+(?:many|much|often|long|big|large)\b)",
    re.IGNORECASE)


def _open_question(cues) -> bool:
    """A question that does not ask for agreement: "what ...?", "for a layer, how many ...?", and a
    statement said as a question ("so the prompt is both the key and the query?"), which asks whether."""
    return cues.question and not cues.yes_no and not cues.confirmation and not cues.authority


def _neutral_question(cues) -> bool:
    """ "Is/Does X?" asks whether X holds; asking is not holding it (only "X, right?" asks to confirm)."""
    return cues.yes_no and not cues.confirmation and not cues.authority


def _polarity_mismatch(said: str, candidate: Candidate) -> bool:
    """The message negates where the misconception does not, or the reverse. The stance model reads
    "attention doesn't use KL" as asserting "attention uses KL" (0.98 on the dev set), so such a message is
    never refuted. Compared with both the statement and its wording closest to the message: "the matrix is
    symmetric since a dot product does not depend on the order" has a negation learners leave out, and
    "non-SQL compliant" one that the cue reader does not see."""
    mine = polarity(said)
    return mine != polarity(candidate.statement.text) and mine != polarity(candidate.closest_line)


def _repeats_a_non_asserting_wording(candidate: Candidate, limits: Thresholds) -> bool:
    """The message all but repeats a vetted wording that denies the misconception (its correction), or
    repeats outright one that only asks about its subject ("Why can the same prompt at temperature 0 give
    different outputs?", which the model once read as asserting "temperature 0 is always deterministic" at
    0.99). Asks wordings share most words with the statements, so only a verbatim repeat counts."""
    needed = {"denies": limits.known_phrasing_similarity, "asks": limits.verbatim_similarity}
    return (candidate.closest_kind in needed and candidate.similarity >= needed[candidate.closest_kind]
            and candidate.kind_margin >= limits.denial_margin)


def _truth_rival(reading: Reading, candidate: Candidate, limits: Thresholds) -> bool:
    """Another vetted truth the message may be saying instead (its own correction is weighed apart)."""
    return any(truth.asserts >= limits.truth_rival_asserts
               and truth.similarity >= candidate.similarity - limits.truth_rival_slack
               and truth.statement.id != candidate.statement.opposite
               for truth in reading.of_kind("truth"))


def _opposite(reading: Reading, candidate: Candidate) -> Candidate | None:
    return next((other for other in reading.candidates if other.statement.id == candidate.statement.opposite), None)
