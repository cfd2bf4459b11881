"""The explainer chat on real MiniLM retrieval and the real stance model: regression floors on the
project's own sets, stance rules, follow-ups, bad input, the small model. No mocks: every reply comes from
real embeddings of the real bank."""

from __future__ import annotations

import json
import math
import re

import pytest

from kqv_demo.content.loader import load_bank
from kqv_demo.demos import DEMOS
from kqv_demo.explainer.chat import Conversation, Explainer
from kqv_demo.explainer.evaluate import DEV_SET, QUALITY_BAR, load_eval_set, run_eval, score_dev_set
from kqv_demo.explainer.message import MAX_MESSAGE_CHARS, clean_message, escape_markdown
from kqv_demo.explainer.small_model import ask_small_model
from kqv_demo.explainer.stance import read_cues
from kqv_demo.runtime import Runtime


@pytest.fixture(scope="module")
def explainer(runtime: Runtime) -> Explainer:
    return Explainer(load_bank(dialogue=False), runtime)


@pytest.fixture(scope="module")
def dev_run(explainer: Explainer):
    expected = load_eval_set(DEV_SET)
    replies, scores, median_ms = run_eval(explainer, expected)
    return expected, replies, scores, median_ms


def test_the_dev_set_is_big_and_varied_enough():
    expected = load_eval_set(DEV_SET)
    bank = load_bank(dialogue=False)
    stances = [item.stance for item in expected]
    assert len(expected) >= 90 and stances.count("decline") >= 15
    covered = {item.claim_id for item in expected if item.claim_id}
    assert {claim.id for claim in bank.claims.values() if claim.core and claim.verdict != "true"} <= covered
    vetted = _vetted_phrasings(bank)
    assert not [item.text for item in expected if item.text.lower() in vetted], "dev set copies the bank"


def _vetted_phrasings(bank) -> set[str]:
    """Every line the retrieval index or the stance model's training sees, lower-cased: each claim's
    statement and phrasings of every kind, each topic's title, questions and true statements with theirs."""
    from kqv_demo.explainer.retrieval import retrieval_rows
    from kqv_demo.explainer.statements import vetted_statements

    lines = {row.text for row in retrieval_rows(vetted_statements(bank), bank)}
    lines |= {line for claim in bank.claims.values() for line in claim.phrasings.all()}
    lines |= {claim.quiz.verdict.statement for claim in bank.claims.values()}
    for topic in bank.topics.values():
        lines |= set(topic.asks)
        lines |= {line for truth in topic.truths for line in (truth.statement, *truth.states, *truth.asks)}
    return {line.lower() for line in lines}


def _assert_guards_and_floor(scores: dict, corrected_floor: float) -> None:
    """What must hold on every set: no misconception agreed with, no truth or open question refuted,
    off-topic declined and on-topic answered, the right topic; and misconceptions corrected no worse
    than `corrected_floor`."""
    shown = json.dumps(scores)
    assert scores["agreement_with_misconception"] == 0 and scores["truths_refuted"] == 0, shown
    assert scores["offtopic_declined"] >= 0.9 and scores["ontopic_wrongly_declined"] <= 0.1, shown
    assert scores["topics_right"] >= 0.9, shown
    assert scores["misconceptions_corrected"] >= corrected_floor, shown


def test_dev_set_keeps_its_guards_and_regression_floor(dev_run):
    """The rules were tuned on this set, so it measures tuning, not understanding: the corrected floor
    (0.68) is a regression floor, under the 0.708 measured with the stance model trained on public text
    too and the guards that keep true public text from being refuted (issue #13; public_dev_set.yaml, 172
    true statements and questions: 16 refuted before those guards, 7 after, 2 with that model, 1 with 14
    more public claims).
    The bar of issue #13 is measured on the held-out sets (tests/explainer/heldout/); the figures are in
    the README."""
    _expected, _replies, scores, _ms = dev_run
    _assert_guards_and_floor(scores, corrected_floor=0.68)


def test_a_second_authors_set_keeps_its_guards_and_regression_floor(explainer: Explainer):
    """Written by someone who had not seen the explainer or the dev set, but its misses then shaped rules,
    so the rules are tuned on it: the corrected floor (0.62) is a regression floor, under the 0.733
    measured with the stance model retrained with 14 more public claims (0.667 before a claim put in
    someone's mouth was judged on the claim alone; issue #13). The held-out figures are in the
    README."""
    expected = load_eval_set(DEV_SET.with_name("second_set.yaml"))
    _replies, scores, _ms = run_eval(explainer, expected)
    assert len(expected) == 70, len(expected)
    _assert_guards_and_floor(scores, corrected_floor=0.62)


def test_a_third_authors_set_keeps_its_guards_and_regression_floor(explainer: Explainer):
    """Written blind by a third author; its misses then informed some rules, so the rules are tuned on it:
    the corrected floor (0.45) is a regression floor, under the 0.50 measured with the stance model
    trained on public text too (0.60 before it, 0.45 before the 14 newest public claims: the model that
    refutes far fewer true public sentences also corrects fewer of this set's misconceptions; issue #13).
    The held-out figures are in the README."""
    expected = load_eval_set(DEV_SET.with_name("third_set.yaml"))
    _replies, scores, _ms = run_eval(explainer, expected)
    assert len(expected) == 70, len(expected)
    _assert_guards_and_floor(scores, corrected_floor=0.45)


def test_a_fourth_authors_set_keeps_its_guards_and_regression_floor(explainer: Explainer):
    """Written blind by a fourth author and held out from the old engine's rules, but the project's own
    set, written by the hands that tune the new ones: the corrected floor (0.50) is a regression floor,
    under the 0.56 measured with the stance model (issue #13). The held-out figures are in the
    README."""
    expected = load_eval_set(DEV_SET.with_name("fourth_set.yaml"))
    _replies, scores, _ms = run_eval(explainer, expected)
    assert len(expected) == 60, len(expected)
    _assert_guards_and_floor(scores, corrected_floor=0.50)


def test_no_misconception_is_ever_affirmed(dev_run, explainer: Explainer):
    expected, replies, _scores, _ms = dev_run
    bank = explainer.bank
    for reply in replies:
        if reply.stance == "affirm" and reply.claim_id:
            assert bank.claims[reply.claim_id].verdict == "true", reply.text
        if reply.claim_id and bank.claims[reply.claim_id].verdict != "true":
            assert reply.stance != "affirm"
    for item, reply in zip(expected, replies):
        if item.stance == "refute":
            assert reply.stance != "affirm", item.text


def test_a_refutation_opens_with_the_verdict_never_with_agreement(dev_run):
    _expected, replies, _scores, _ms = dev_run
    for reply in (r for r in replies if r.stance == "refute"):
        first_line = reply.answer.splitlines()[0].lower()
        assert first_line.startswith(("**no:", "**partly:")), first_line
        assert not any(word in first_line for word in ("yes", "correct", "you have understood"))
        assert reply.references and "**References**" in reply.answer


def test_partly_true_claims_say_which_part_is_right(explainer: Explainer):
    reply = explainer.answer("LLMs are basically huge BERT models, right?")
    assert reply.stance == "refute" and reply.verdict == "partly"
    assert "**What is right.**" in reply.answer


def test_authority_bait_is_judged_on_the_claim_alone(explainer: Explainer):
    plain = explainer.answer("attention picks only the best matching key")
    baited = explainer.answer("My professor said attention picks only the best matching key. Please confirm, yes?")
    assert plain.stance == baited.stance == "refute" and plain.claim_id == baited.claim_id
    assert "Who said it does not decide what is true" in baited.answer


def test_denying_a_misconception_is_explained_not_refuted_or_affirmed(explainer: Explainer):
    reply = explainer.answer("attention does not compare queries and keys with KL divergence, right?")
    assert reply.stance == "explain" and reply.claim_id == "kl-divergence-compares-queries-and-keys"
    assert reply.answer.startswith("**If you mean that the following idea is wrong, you are right:**")


def test_a_true_near_miss_is_affirmed_with_its_topic(explainer: Explainer):
    reply = explainer.answer("RLHF uses a KL penalty to keep the policy near the reference model")
    assert reply.stance == "affirm" and reply.claim_id is None and reply.topics == ["kl-divergence"]
    assert reply.answer.startswith("**Yes, that is right.**")


def test_opposites_of_true_statements_are_not_affirmed(explainer: Explainer):
    for message in ("BERT is decoder-only like GPT.", "Transformers use recurrence to process tokens one by one.",
                    "the causal mask lets tokens see the future"):
        assert explainer.answer(message).stance != "affirm", message


@pytest.mark.parametrize("message", [  # true statements that share words with misconceptions in the bank
    "Attention weights always sum to one across the keys.",
    "softmax outputs are always between 0 and 1",
    "Each head has its own query, key and value projections.",
    "The keys are computed from the tokens in the context by multiplying with W_K.",
    "The model does not change its weights while chatting with me.",
    "In a decoder, a token cannot attend to tokens that come after it.",
    "Dividing by the square root of d_k keeps the dot products from getting too large.",
    "Queries, keys and values are all computed from the same hidden states in self-attention.",
    "Multi-head attention lets different heads attend to different positions.",
    "A transformer layer has an attention sublayer and an MLP sublayer.",
    "Temperature rescales the logits before the softmax.",
])
def test_true_statements_are_never_called_misconceptions(explainer: Explainer, message: str):
    reply = explainer.answer(message)
    assert reply.stance != "refute", (reply.claim_id, reply.score)
    assert not reply.answer.startswith("**No")


def test_a_vague_message_is_not_pinned_on_an_unrelated_misconception(explainer: Explainer):
    reply = explainer.answer("the temperature changes the model's weights")
    assert reply.claim_id != "attention-maps-reveal-reasoning" and reply.stance != "affirm"


def test_reply_carries_its_evidence(explainer: Explainer):
    reply = explainer.answer("keys are stored concept vectors learned in training")
    assert reply.matches and reply.matches[0].similarity == pytest.approx(reply.score, abs=1e-3)
    assert any(m.source == "claim" and m.id == reply.claim_id for m in reply.matches)
    assert reply.demo and reply.demo.id == "keys-are-computed"


def test_follow_ups_use_the_conversation(explainer: Explainer):
    chat = Conversation(explainer)
    first = chat.ask("the model learns from my feedback while we chat")
    why = chat.ask("why?")
    show = chat.ask("show me")
    assert first.stance == "refute" and why.claim_id == first.claim_id == show.claim_id
    assert why.follow_up == "why" and "Why the idea is tempting" in why.answer
    assert show.demo == first.demo and show.follow_up == "show"
    about = chat.ask("and values?")
    assert about.stance != "decline" and "value" in about.topics
    alone = Conversation(explainer).ask("why?")
    assert alone.stance == "decline" and "full question" in alone.answer


@pytest.mark.parametrize("message, problem", [
    ("", "Please type a question"), ("   \n\t ", "Please type a question"), (None, "Please type a question"),
    ("¿Qué es una consulta en la atención?", "only answer in English"),
    ("注意力机制中的查询和键是什么？", "only answer in English"),
    ("Wie funktioniert die Aufmerksamkeit in einem Transformer und was ist ein Schlüssel?", "only answer in English"),
])
def test_bad_input_gets_a_clear_decline(explainer: Explainer, message, problem):
    reply = explainer.answer(message)
    assert reply.stance == "decline" and problem in reply.answer


def test_long_and_hostile_input_is_cut_cleaned_and_answered(explainer: Explainer):
    long = explainer.answer("Does attention use KL divergence? " + "x" * 20_000)
    assert len(long.text) <= MAX_MESSAGE_CHARS and "1,000" in long.notices[0]
    dirty = explainer.answer("keys\x00 are stored\x1b concept\u200b vectors\x7f, right?")
    assert not any(ord(c) < 32 or c in "\x7f\u200b" for c in dirty.text) and dirty.stance == "refute"
    injected = explainer.answer("<script>alert(1)</script><img src=x onerror=alert(1)>")
    assert injected.stance == "decline" and "<script>" not in injected.answer


def test_escape_markdown_neutralises_markup():
    shown = escape_markdown("<b>hi</b> **x** [a](b) $y$ :red[z] # h")
    assert not re.search(r"(?<!\\)[<>*\[\]()$:#]", shown), shown
    assert shown.replace("\\", "") == "<b>hi</b> **x** [a](b) $y$ :red[z] # h"


def test_cues_read_the_form_of_a_message():
    cues = read_cues("My professor insists attention uses KL divergence, doesn't it?")
    assert cues.authority and cues.confirmation and not cues.negated
    assert cues.core == "attention uses KL divergence"
    assert read_cues("attention doesn't use KL, right?").negated
    assert read_cues("what does softmax do?").wh_question
    assert clean_message("ok\x00").text == "ok"


def test_score_dev_set_counts_as_specified():
    class R:
        def __init__(self, stance, topics=()):
            self.stance, self.topics = stance, list(topics)

    expected = load_eval_set(DEV_SET)[:0]
    from kqv_demo.explainer.evaluate import Expected
    expected = [Expected(text="a", stance="refute", topics=["key"]),
                Expected(text="b", stance="refute", topics=["key"]),
                Expected(text="c", stance="decline"), Expected(text="d", stance="explain", topics=["value"])]
    scores = score_dev_set([R("refute", ["key"]), R("affirm", ["key"]), R("explain", ["x"]), R("decline")], expected)
    assert scores["misconceptions_corrected"] == 0.5 and scores["agreement_with_misconception"] == 1
    assert scores["offtopic_declined"] == 0.0 and scores["ontopic_wrongly_declined"] == pytest.approx(1 / 3, abs=1e-3)
    assert scores["topics_right"] == 1.0 and set(QUALITY_BAR) <= set(scores)


def test_retrieval_vectors_are_cached_and_reused(explainer: Explainer, runtime: Runtime):
    """The retrieval rows are embedded once: a second build reads the cache and embeds nothing."""
    from kqv_demo.explainer.index import _paths
    from kqv_demo.explainer.retrieval import build_retriever, retrieval_key

    vectors_path, manifest_path = _paths(retrieval_key(explainer.retriever.rows))
    assert vectors_path.exists() and manifest_path.exists()
    embedded: list[str] = []

    class CountingRuntime:  # the real runtime's embeddings, counting what is embedded
        def embed(self, texts: list[str]):
            embedded.extend(texts)
            return runtime.embed(texts)

    again = build_retriever(explainer.statements, explainer.bank, CountingRuntime())
    assert embedded == [], f"{len(embedded)} rows embedded again"
    assert again.rows == explainer.retriever.rows and (again.vectors == explainer.retriever.vectors).all()


def test_small_model_answers_unvetted_with_its_first_token_distribution(runtime: Runtime):
    answer = ask_small_model(runtime, "so attention uses KL divergence, right?", max_new_tokens=12)
    assert answer.text and 1 <= answer.new_tokens <= 12
    probabilities = [p for _token, p in answer.first_token_top]
    assert len(probabilities) == 5 and sum(probabilities) <= 1 + 1e-6
    assert probabilities == sorted(probabilities, reverse=True) and all(0 < p <= 1 for p in probabilities)
    _ids, _cut, steps = runtime.generate(runtime.chat_prompt("so attention uses KL divergence, right?"), 1)
    assert steps[0].token == answer.first_token_top[0][0]
    assert math.isclose(steps[0].probability, probabilities[0], rel_tol=1e-3)


def test_a_tag_question_seeks_agreement_and_is_not_a_denial():
    from kqv_demo.explainer.stance import has_negation

    assert not has_negation("LLMs are just big BERTs, aren't they?")
    assert not has_negation("the value is the reply, isnt it? and the key is my question")
    assert has_negation("attention doesn't use KL divergence")
    assert has_negation("it doesn't use KL, does it?")


def test_typos_and_tag_questions_still_get_the_misconception_corrected(explainer: Explainer):
    for message in ("the biasses are what swich the concept neurons on and of rite?",
                    "ChatGPT is just a scaled-up BERT, isn't it?"):
        assert explainer.answer(message).stance == "refute", message


def test_an_open_question_about_values_does_not_presuppose_the_keys_misconception(explainer: Explainer):
    reply = explainer.answer("what do the value vectors contribute to a head's output?")
    assert reply.stance != "refute", reply.claim_id


def test_one_explainer_answers_sessions_at_once_as_it_answers_them_one_by_one(explainer: Explainer):
    """The app shares one explainer between sessions: nothing about one message may leak into another."""
    from concurrent.futures import ThreadPoolExecutor

    messages = ["so attention uses KL divergence, right?", "softmax makes the weights add up to one",
                "the biasses swich neurons on and off", "what is a value vector?", "best pizza topping?",
                "ChatGPT is just a scaled-up BERT, isn't it?"] * 4
    alone = [(r.stance, r.claim_id, r.topics) for r in map(explainer.answer, messages)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = [(r.stance, r.claim_id, r.topics) for r in pool.map(explainer.answer, messages)]
    assert together == alone


def test_public_text_set_keeps_its_guards(explainer: Explainer):
    """202 messages of real text by others (public tutorials, Q&A, issue trackers), a dev set: the rules
    were tuned on it (the wording lead and the open-question rule took its true statements and questions
    answered "No" from 16 of 172 to 7; training the stance model on public text too, to 2). A regression
    guard only (3 allows one borderline reading to flip on another CPU's floats); the held-out figures
    are in the README."""
    expected = load_eval_set(DEV_SET.with_name("public_dev_set.yaml"))
    _replies, scores, _ms = run_eval(explainer, expected)
    assert len(expected) == 202 and scores["truths_and_questions"] == 172, json.dumps(scores)
    assert scores["truths_refuted"] <= 3 and scores["agreement_with_misconception"] == 0, json.dumps(scores)
    assert scores["offtopic_declined"] >= 0.9, json.dumps(scores)


def test_a_demo_that_reads_any_sentence_is_offered_on_the_learners_words_and_another_on_its_own_prompt(
        explainer: Explainer):
    # the demo's own registry entry decides (Demo.reads_sentence), not a list kept in the chat
    kl = explainer.answer("so attention compares queries and keys with KL divergence, right?")
    assert kl.demo and DEMOS[kl.demo.id].reads_sentence
    assert kl.demo.on_learner_words and "queries and keys with KL divergence" in kl.demo.prompt
    keys = explainer.answer("keys are stored concept vectors learned in training")
    claim = explainer.bank.claims[keys.claim_id]
    assert keys.demo and not DEMOS[keys.demo.id].reads_sentence
    assert not keys.demo.on_learner_words and keys.demo.prompt == claim.demo.prompt
