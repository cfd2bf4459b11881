"""The shipped claim bank: valid, complete against the checklist, and faithful to the dialogue."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from kqv_demo.content.loader import CONTENT_DIR, dialogue_path, load_bank
from kqv_demo.content.schema import TOPICS
from kqv_demo.settings import PROJECT_ROOT

CHECKLIST = PROJECT_ROOT.parent / "shared" / "reference" / "claims.md"
needs_dialogue = pytest.mark.skipif(not dialogue_path().exists(),
                                    reason="the source dialogue is not beside the project")
needs_checklist = pytest.mark.skipif(not CHECKLIST.exists(), reason="the claims checklist is not beside the project")


@pytest.fixture(scope="module")
def bank():
    return load_bank()


def checklist_numbers() -> dict[str, str]:
    """Claim id -> checklist number, from the first-line comment of each claim file."""
    numbers = {}
    for file in (CONTENT_DIR / "claims").glob("*.yaml"):
        match = re.match(r"# (C\d\d) in the checklist", file.read_text())
        if match:
            numbers[file.stem] = match.group(1)
    return numbers


def test_the_shipped_bank_has_no_errors(bank):
    assert [str(error) for error in bank.errors] == []


def test_coverage_and_balance(bank):
    verdicts = Counter(claim.verdict for claim in bank.claims.values())
    assert len(bank.claims) >= 40
    assert verdicts["true"] >= 5 and verdicts["false"] >= 10 and verdicts["partly"] >= 10
    assert set(bank.topics) == set(TOPICS)
    used_topics = {topic for claim in bank.claims.values() for topic in claim.topics}
    assert len(used_topics) >= 20


def test_file_names_are_ids(bank):
    for claim_id, file in bank.claim_files.items():
        assert file.stem == claim_id


@needs_checklist
def test_every_core_claim_of_the_checklist_is_in_the_bank(bank):
    core_line = next(line for line in CHECKLIST.read_text().splitlines() if line.startswith("**Core set"))
    core = set(re.findall(r"C\d\d", core_line))
    numbers = checklist_numbers()
    covered = {numbers[claim_id] for claim_id in bank.claims if claim_id in numbers}
    assert core - covered == set()
    for claim_id, number in numbers.items():
        if number in core and claim_id in bank.claims:
            assert bank.claims[claim_id].core, f"{claim_id} ({number}) is core in the checklist"


def test_every_false_and_partly_claim_ends_with_a_live_demo_or_says_why_none_applies(bank):
    from kqv_demo.demos import DEMOS

    without = [claim.id for claim in bank.claims.values()
               if claim.verdict != "true" and claim.demo is None and not claim.no_demo]
    assert without == []
    dialogue_without = [claim.id for claim in bank.claims.values()
                        if claim.origin == "dialogue" and claim.verdict != "true" and claim.demo is None]
    assert dialogue_without == []  # every misconception of the dialogue is shown on the model
    assert all(claim.demo.id in DEMOS for claim in bank.claims.values() if claim.demo)


@needs_dialogue
def test_every_quote_is_verbatim_in_the_dialogue(bank):
    from_dialogue = {claim_id for claim_id, claim in bank.claims.items() if claim.origin == "dialogue"}
    assert set(bank.quote_lines) == from_dialogue


def test_every_verdict_sentence_states_the_verdict_first(bank):
    opening = {"false": "False", "partly": "Partly true", "true": "True"}
    for claim in bank.claims.values():
        first_word = re.split(r"[.,:;]", claim.refutation.verdict)[0]
        assert first_word == opening[claim.verdict], claim.id


def test_every_claim_has_enough_phrasings_of_each_kind(bank):
    """What the chat's stance model learns from, and what its tests use: validate refuses fewer."""
    for claim in bank.claims.values():
        said = claim.phrasings
        assert len(set(said.states)) >= 5, claim.id
        assert len(set(said.presupposes)) >= 2 and len(set(said.asks)) >= 2, claim.id
        if claim.verdict == "true":
            assert not said.corrections and claim.misconception is None, claim.id
        else:
            assert len(set(said.corrections)) >= 2 and claim.misconception, claim.id
    for topic in bank.topics.values():
        assert len(topic.asks) >= 3, topic.id
        for truth in topic.truths:
            assert len(set(truth.states)) >= 3 and len(set(truth.asks)) >= 2, truth.statement


def test_no_phrasing_stands_for_two_things(bank):
    lines = [" ".join(line.lower().split()) for claim in bank.claims.values() for line in claim.phrasings.all()]
    lines += [" ".join(line.lower().split()) for topic in bank.topics.values()
              for line in [*topic.asks,
                           *(text for truth in topic.truths for text in (truth.statement, *truth.states, *truth.asks))]]
    assert len(lines) == len(set(lines))


def test_public_claims_say_where_learners_state_them(bank):
    for claim in bank.claims.values():
        if claim.origin == "public":
            assert claim.seen_at and claim.quote is None, claim.id


@needs_dialogue
def test_what_a_spot_the_error_question_says_of_its_text_holds_in_the_dialogue(bank):
    """A dialogue claim's spot-the-error text is introduced as the speaker's own words (quiz.items._said_by),
    so it must be verbatim in the dialogue; the NoSQL question's context names the slides' real title, which
    the dialogue gives before the assistant's summary."""
    dialogue = bank.dialogue
    for claim in bank.claims.values():
        spot = claim.quiz.spot_the_error
        if claim.origin == "dialogue" and spot is not None:
            assert dialogue.find(spot.text) is not None, claim.id
    nosql = bank.claims["slides-are-about-nosql-databases"].quiz.spot_the_error
    title = "Understanding keys, queries & values"
    assert title in nosql.context
    assert dialogue.find(title) is not None and dialogue.find(title) < dialogue.find(nosql.text)
