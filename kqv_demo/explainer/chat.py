"""The explainer chat: answers only from the vetted bank, corrects misconceptions, never agrees with one.

    explainer = default_explainer()                     # bank + MiniLM index (cached on disk)
    reply = explainer.answer("so attention uses KL divergence, right?")
    reply.stance, reply.claim_id                        # "refute", "kl-divergence-compares-queries-and-keys"
    chat = Conversation(explainer)
    chat.ask("keys are stored in the model, right?"); chat.ask("why?")   # the follow-up keeps the claim

How the stance is decided (see README, "Ask"): retrieve the closest vetted phrasings with MiniLM; decline
below a calibrated similarity; read the message's form (stance.read_cues); a misconception that the learner
states or asks to confirm is refuted, one they deny is explained ("you are right if..."), a vetted true
statement they make is affirmed, and an open question is explained from the closest topic or claim.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from kqv_demo.content.loader import Bank, load_bank
from kqv_demo.content.schema import Claim, Reference, TopicPage
from kqv_demo.demos import DEMOS
from kqv_demo.explainer import compose
from kqv_demo.explainer.index import Index, Phrasing, build_index
from kqv_demo.explainer.message import Spelling, clean_message, content_words, normalise_terms
from kqv_demo.explainer.stance import Cues, conflicting_terms, contrast_clauses, has_negation, polarity, read_cues
from kqv_demo.runtime import EMBED_MAX_TOKENS, Runtime, one_thread, shared_runtime

Stance = Literal["refute", "affirm", "explain", "decline"]

# Calibrated on tests/explainer/dev_set.yaml (cosine similarity of MiniLM sentence embeddings).
DECLINE_BELOW = 0.50  # nothing in the bank is this close: no vetted answer
NEEDS_VOCABULARY_BELOW = 0.66  # a middling match counts only if the message talks about the subject
AFFIRM_AT_LEAST = 0.68  # a true statement must be this close to be agreed with...
AFFIRM_MARGIN = 0.10  # ...and beat every misconception by this much
TOPIC_SLACK = 0.04  # a misconception within this of the best topic phrasing still decides a verdict
RELATED_SLACK = 0.15  # ...or within this, when that phrasing is on one of the misconception's topics
TOPIC_PREFERENCE = 0.05  # an open question goes to the topic page unless a claim is clearly closer
SAYS_THE_SAME_AT_LEAST = 0.5  # agree only if the true phrasing holds this share of the message's words
CLEARLY_THE_SAME = 0.75  # a misconception this close is refuted whatever the wording; below, it must share words
SHARES_WORDS_AT_LEAST = 0.2  # (the share of its words it must hold otherwise)
TRUE_RIVAL_SLACK = 0.07  # a true statement this close to the misconception's similarity...
TRUE_RIVAL_WORD_LEAD = 0.05  # ...that holds this much more of the message's words blocks the refutation
REFUTE_AT_LEAST = 0.60  # below this, a misconception is named only when it leads everything else clearly...
CLEAR_LEAD = 0.08  # ...by this much
BEST_OF_ALL_AT_LEAST = 0.70  # ...or be the closest phrasing of all, at least this close (a paraphrase)
YES_NO_REFUTE_AT_LEAST = 0.75  # "Is/Does ...?" is answered "No: misconception" only when this close
PRESUPPOSED_AT_LEAST = 0.78  # an open question this close to a misconception presupposes it ("why does ... KL?")
FOLLOW_UP_BOOST = 0.03  # in a follow-up, phrasings on the conversation's topics get this much extra
TOP_MATCHES = 5
LEXICAL_WEIGHT = 0.15  # weight of the share of the message's content words that a phrasing contains

SUBJECT_WORDS = re.compile(
    r"\b(?:attention|attend\w*|transformers?|quer(?:y|ies)|keys?|values?|softmax|kl|divergence|dot[- ]?products?|"
    r"heads?|layers?|tokens?|embeddings?|bert|gpt\w*|llms?|language models?|decoders?|encoders?|logits?|"
    r"sampl\w+|temperature|residual|mask\w*|nosql|mongo\w*|databases?|neurons?|rlhf|fine-?tun\w*|pre-?train\w*|"
    r"training|context|prompts?|chat\s?bots?|chatgpt|smollm\w*|minilm|vectors?|weights?|probabilit\w+|"
    r"distributions?|calm|layerskip|deebert|pabee|early[- ]exit\w*|cross-?entropy|distillation|kv|cache|"
    r"hidden states?|representations?|concepts?|mlp|biase?s?|superposition|polysemantic|rope|"
    r"heatmaps?|scaling|hyperparameters?|d_k|qkv|kqv|learn\w*|remember\w*|generat\w+|models?|conversations?|"
    r"chat\w*|retrain\w*)\b",
    re.IGNORECASE,
)
# Words that only name the subject together with another one ("the key to a good sourdough" is not about keys).
GENERIC_SUBJECT_WORDS = re.compile(
    r"(?:attention|attend\w*|keys?|values?|heads?|layers?|tokens?|temperature|context|weights?|training|prompts?|"
    r"vectors?|probabilit\w+|distributions?|mask\w*|cache|concepts?|biase?s?|representations?|scaling|learn\w*|"
    r"remember\w*|sampl\w+|generat\w+|databases?|models?|conversations?|chat\w*|retrain\w*)",
    re.IGNORECASE,
)
SENTENCE_DEMOS = frozenset({
    "attention-by-hand", "dot-product-not-kl", "soft-lookup", "query-count", "heads-in-parallel",
    "one-attention-pass", "values-not-text", "no-bias-concepts", "attention-sinks",
})
_WHY = re.compile(r"^(?:but |and |so |ok |okay )?(?:why|how come|how so|why is that|why not|why so|is that so|"
                  r"explain why|why does it|why is it|why do they|really|says who|what makes you say that)\b", re.I)
_SHOW = re.compile(r"^(?:please |can you |could you |ok |okay |then )?(?:show me|show|demo|prove it|prove|"
                   r"run the demo|run it|let me see|evidence|proof|demonstrate)\b", re.I)
_AND_ABOUT = re.compile(r"^(?:and|and what about|what about|how about|and how about|same for|what of|and for)\s+"
                        r"(?:the\s+)?(?P<rest>.+?)[\s?!.]*$", re.I)


@dataclass(frozen=True)
class Match:
    source: str  # "claim" | "topic"
    id: str
    field: str
    phrasing: str
    similarity: float


@dataclass(frozen=True)
class DemoOffer:
    id: str
    title: str
    prompt: str | None  # None: the demo's own default prompt
    params: dict[str, int | float | str | bool]
    on_learner_words: bool


@dataclass
class Reply:
    text: str  # the learner's message as read (cleaned, possibly cut)
    stance: Stance
    answer: str  # Markdown from the bank
    claim_id: str | None = None
    verdict: str | None = None
    topics: list[str] = field(default_factory=list)
    score: float = 0.0  # similarity of the best match
    matches: list[Match] = field(default_factory=list)
    demo: DemoOffer | None = None
    references: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    follow_up: str | None = None  # "why" | "show" | "about" when answered from the conversation

    def as_json(self) -> dict:
        return {
            "text": self.text, "stance": self.stance, "claim_id": self.claim_id, "verdict": self.verdict,
            "topics": list(self.topics), "score": round(float(self.score), 4), "answer": self.answer,
        }


@dataclass(frozen=True)
class _Lexical:
    weights: dict[str, float]  # the message's content words (spelling corrected) and their IDF
    overlaps: np.ndarray  # [rows] the IDF-weighted share of those words in each phrasing


@dataclass(frozen=True)
class _Scores:
    """For one message: the similarity of every phrasing, and the best row of each kind."""

    similarities: np.ndarray
    misconception: int  # best row of a false or partly claim that states it (or asks yes/no about it)
    misconception_any: int  # best row of a false or partly claim, open questions included
    true_statement: int  # best assertive row of a true claim or a topic's true statements
    topic: int  # best topic title, asked_as or summary row
    explanation: int  # best row that is neither a misconception nor a true statement

    overlaps: np.ndarray  # share of the message's content words (IDF-weighted) in each phrasing
    word_weights: dict[str, float]  # the message's content words (spelling corrected) and their IDF

    def __getitem__(self, row: int) -> float:
        return float(self.similarities[row])


class Explainer:
    def __init__(self, bank: Bank, runtime: Runtime, index: Index | None = None) -> None:
        self.bank = bank
        self.runtime = runtime
        self.index = index or build_index(bank, runtime)
        rows = self.index.phrasings
        self._misconception_rows = np.array(
            [row.source == "claim" and bank.claims[row.id].verdict != "true" for row in rows]
        )
        self._true_rows = np.array([self._is_true_statement(row) for row in rows])
        self._topic_rows = np.array([row.source == "topic" and row.field != "true_statement" for row in rows])
        self._open_question_rows = np.array([not row.assertive and _is_open(read_cues(row.text)) for row in rows])
        self._assertive_rows = np.array([row.assertive for row in rows])
        self._row_words = [content_words(row.text) for row in rows]
        english = {piece for piece in runtime.minilm.tokenizer.get_vocab() if piece.isalpha()}  # whole words
        self._spelling = Spelling({word for words in self._row_words for word in words}, english)
        self._claim_words: dict[str, set[str]] = {}
        for row, words in zip(rows, self._row_words):
            if row.source == "claim":
                self._claim_words.setdefault(row.id, set()).update(words)
        counts = Counter(word for words in self._row_words for word in words)
        self._idf = {word: math.log(len(rows) / count) for word, count in counts.items()}
        self._unseen_idf = float(np.median(list(self._idf.values())))  # unknown words: typical weight
        self._row_topics = [
            frozenset([row.id]) if row.source == "topic" else frozenset(bank.claims[row.id].topics) for row in rows
        ]

    def _is_true_statement(self, row: Phrasing) -> bool:
        if row.source == "topic":
            return row.field == "true_statement"
        return row.assertive and self.bank.claims[row.id].verdict == "true"

    # --- public ---------------------------------------------------------------------------------

    def answer(self, message: str | None, history: Conversation | None = None) -> Reply:
        """The reply to one message; `history` gives follow-ups ("why?", "show me") their context."""
        cleaned = clean_message(message)
        if cleaned.problem == "empty":
            return Reply(cleaned.text, "decline", compose.EMPTY, notices=cleaned.notices)
        if cleaned.problem == "not-english":
            return Reply(cleaned.text, "decline", compose.NOT_ENGLISH, notices=cleaned.notices)
        previous = history.last_answered() if history else None
        follow_up = self._follow_up(cleaned.text, previous)
        reply = follow_up or self._answer_fresh(cleaned.text, previous)
        reply.notices = cleaned.notices + reply.notices
        return reply

    def embed(self, text: str) -> np.ndarray:
        return self._embed([normalise_terms(text)])[0]

    def _embed(self, texts: list[str]) -> np.ndarray:
        with one_thread():
            return self.runtime.embed(texts)

    # --- retrieval ------------------------------------------------------------------------------

    def _scores(self, similarities: np.ndarray, lexical: _Lexical) -> _Scores:
        def best(mask: np.ndarray) -> int:
            return int(np.where(mask, similarities, -2.0).argmax())

        return _Scores(
            similarities,
            misconception=best(self._misconception_rows & ~self._open_question_rows),
            misconception_any=best(self._misconception_rows),
            true_statement=best(self._true_rows),
            topic=best(self._topic_rows),
            explanation=best(~self._misconception_rows & ~self._true_rows),
            overlaps=lexical.overlaps,
            word_weights=lexical.weights,
        )

    def _best_assertive_of_claim(self, scores: _Scores, claim_id: str) -> tuple[float, int]:
        """How close the claim's closest assertive phrasing is, and which row that is."""
        same_claim = np.array([row.source == "claim" and row.id == claim_id for row in self.index.phrasings])
        candidates = np.where(same_claim & self._assertive_rows, scores.similarities, -2.0)
        row = int(candidates.argmax())
        return float(candidates[row]), row

    def _slack(self, row: int, other: int) -> float:
        """How far behind `other` the row may be and still decide: more when both are on the same topic."""
        return RELATED_SLACK if self._row_topics[row] & self._row_topics[other] else TOPIC_SLACK

    def _similarities(self, text: str) -> tuple[np.ndarray, _Lexical]:
        """Cosine similarity of the sentence embeddings, plus a little for shared content words
        (MiniLM alone confuses statements that share a theme but not their subject)."""
        lexical = self._lexical(text)
        parts = [normalise_terms(text)] + self._within_budget([normalise_terms(s) for s in _sentences(text)])
        vectors = self._embed(parts)
        # A long message dilutes its point; each of its sentences is also matched on its own.
        semantic = (self.index.vectors @ vectors.T).max(axis=1)
        return semantic + LEXICAL_WEIGHT * lexical.overlaps, lexical

    def _within_budget(self, sentences: list[str]) -> list[str]:
        """The first sentences, as long as they add up to at most SENTENCE_TOKEN_BUDGET tokens: so the
        sentences of any message cost at most one more full-length embedding."""
        kept, total = [], 0
        for sentence, count in zip(sentences, self.runtime.token_counts(sentences)):
            total += count
            if total > SENTENCE_TOKEN_BUDGET:
                break
            kept.append(sentence)
        return kept

    def _lexical(self, text: str) -> _Lexical:
        """Share of the message's content words found in each phrasing, words weighted by rarity (IDF)."""
        weights = {word: self._idf.get(word, self._unseen_idf) for word in self._spelling.words(text)}
        total = sum(weights.values())
        if not total:
            return _Lexical(weights, np.zeros(len(self._row_words), dtype=np.float32))
        return _Lexical(weights, np.array([sum(weights[w] for w in weights.keys() & row) / total
                                           for row in self._row_words], dtype=np.float32))

    def _claim_overlap(self, scores: _Scores, claim_id: str) -> float:
        """Share of the message's content words (IDF-weighted) found anywhere in the claim's phrasings:
        a message is specific to a claim when its words belong to that claim, in whichever phrasing."""
        weights = scores.word_weights
        total = sum(weights.values())
        return sum(weights[w] for w in weights.keys() & self._claim_words.get(claim_id, set())) / total if total else 0.0

    def _matches(self, similarities: np.ndarray) -> list[Match]:
        order = np.argsort(-similarities)[:TOP_MATCHES]
        rows = self.index.phrasings
        return [Match(rows[i].source, rows[i].id, rows[i].field, rows[i].text, round(float(similarities[i]), 4))
                for i in order]

    # --- deciding -------------------------------------------------------------------------------

    def _answer_fresh(self, text: str, previous: Reply | None, query: str | None = None) -> Reply:
        cues = read_cues(text)
        similarities, lexical = self._similarities(query or cues.core)
        if previous and previous.topics and _is_short(text):
            similarities = self._boost_topics(similarities, previous.topics)
        best = float(similarities.max())
        on_subject = _on_subject(text)
        if best < DECLINE_BELOW or (best < NEEDS_VOCABULARY_BELOW and not on_subject):
            if previous and previous.topics and _is_short(text) and query is None:
                return self._answer_fresh(text, previous, query=f"{cues.core} ({self._title(previous)})")
            return self._reply(text, "decline", compose.DECLINE, similarities)
        return self._decide(text, cues, self._scores(similarities, lexical))

    def _decide(self, text: str, cues: Cues, scores: _Scores) -> Reply:
        if cues.seeks_verdict and not cues.either_or:
            return self._judge(text, cues, scores)
        return self._explain(text, cues, scores)

    def _judge(self, text: str, cues: Cues, scores: _Scores) -> Reply:
        """The learner states something or asks whether it is true: refute, affirm, or explain."""
        wrong, true, other = scores.misconception, scores.true_statement, scores.explanation
        if (scores[true] >= AFFIRM_AT_LEAST and scores[true] >= scores[wrong] + AFFIRM_MARGIN
                and scores[true] >= scores[other] - self._slack(true, other)):
            row_text = self.index.phrasings[true].text
            if scores.overlaps[true] >= SAYS_THE_SAME_AT_LEAST and not conflicting_terms(cues.core, row_text):
                return self._about_true_statement(text, cues, true, scores)
            return self._explain_row(text, true, scores)  # close in theme, but it may say something else
        close_enough = not (cues.yes_no and not cues.confirmation) or scores[wrong] >= YES_NO_REFUTE_AT_LEAST
        specific_enough = (scores[wrong] >= CLEARLY_THE_SAME
                           or self._claim_overlap(scores, self.index.phrasings[wrong].id) >= SHARES_WORDS_AT_LEAST
                           or (scores[wrong] >= BEST_OF_ALL_AT_LEAST and scores[wrong] >= scores.similarities.max()))
        close = scores[wrong] >= REFUTE_AT_LEAST or scores[wrong] >= max(scores[other], scores[true]) + CLEAR_LEAD
        # "softmax makes the weights add up to one" is close to "softmax just picks the winning key" in
        # meaning-space, but its words are those of a true statement: never refute a truth.
        # A true statement can only stand in the way if the message could be saying it: same polarity,
        # no opposite terms ("the weights do not change" is no rival to "the weights change").
        true_text = self.index.phrasings[true].text
        true_compatible = (polarity(cues.core) == polarity(true_text)
                           and not conflicting_terms(cues.core, true_text))
        true_rival = (true_compatible and scores[true] >= scores[wrong] - TRUE_RIVAL_SLACK
                      and scores.overlaps[true] >= scores.overlaps[wrong] + TRUE_RIVAL_WORD_LEAD)
        if (close_enough and specific_enough and close and scores[wrong] >= scores[other] - self._slack(wrong, other)
                and (scores[wrong] > scores[true] or not true_compatible) and not true_rival):
            return self._about_misconception(text, cues, self._claim(wrong), scores)
        return self._explain_row(text, true if scores[true] > scores[other] else other, scores)

    def _explain(self, text: str, cues: Cues, scores: _Scores) -> Reply:
        """An open question: explain, unless it presupposes a misconception ("why does attention use KL?")."""
        wrong = scores.misconception_any
        claim = self._claim(wrong)
        presupposed, row = self._best_assertive_of_claim(scores, claim.id)
        # "what does the value vector contribute?" is close to "the output combines the key vectors" but
        # asks about the other term: it presupposes nothing.
        if (not cues.either_or and presupposed >= PRESUPPOSED_AT_LEAST
                and presupposed >= scores[scores.explanation] - TOPIC_SLACK
                and not conflicting_terms(cues.core, self.index.phrasings[row].text)):
            return self._about_misconception(text, cues, claim, scores)
        best_claim_row = max((wrong, scores.true_statement, scores.explanation), key=lambda row: scores[row])
        if scores[scores.topic] >= scores[best_claim_row] - TOPIC_PREFERENCE:
            return self._explain_row(text, scores.topic, scores)
        return self._explain_row(text, best_claim_row, scores)

    def _claim(self, row: int) -> Claim:
        return self.bank.claims[self.index.phrasings[row].id]

    def _learner_denies(self, cues: Cues, statement: str, removal_counts: bool = False) -> bool:
        """Does the learner say the opposite of `statement`? Unsure counts as no (then we correct).
        `removal_counts`: "replaced X" also denies X (checked before agreeing with a true statement)."""
        negative = polarity if removal_counts else has_negation
        denies = negative(cues.core)
        if denies == negative(statement):
            return False
        clauses = contrast_clauses(cues.core) if denies else None
        if clauses is None:
            return True
        denied, asserted = clauses
        vectors = self._embed([denied, asserted, statement])
        return float(vectors[0] @ vectors[2]) >= float(vectors[1] @ vectors[2])

    def _about_misconception(self, text: str, cues: Cues, claim: Claim, scores: _Scores) -> Reply:
        if self._learner_denies(cues, claim.refutation.claim):
            return self._claim_reply(text, "explain", compose.learner_rejects_misconception(claim), claim, scores)
        return self._claim_reply(text, "refute", compose.refutation(claim, cues.authority), claim, scores)

    def _about_true_statement(self, text: str, cues: Cues, row_index: int, scores: _Scores) -> Reply:
        row = self.index.phrasings[row_index]
        denies = self._learner_denies(cues, row.text, removal_counts=True)
        if row.source == "claim":
            claim = self.bank.claims[row.id]
            if denies:
                return self._claim_reply(text, "explain", compose.claim_explanation(claim), claim, scores)
            return self._claim_reply(text, "affirm", compose.claim_affirmation(claim), claim, scores)
        topic = self.bank.topics[row.id]
        if denies:
            return self._topic_reply(text, "explain", compose.statement_with_other_polarity(topic, row.text), topic, scores)
        return self._topic_reply(text, "affirm", compose.topic_affirmation(topic, row.text), topic, scores)

    def _explain_row(self, text: str, row_index: int, scores: _Scores) -> Reply:
        row = self.index.phrasings[row_index]
        if row.source == "claim":
            return self._explain_claim(text, self.bank.claims[row.id], scores)
        return self._topic_reply(text, "explain", compose.topic_explanation(self.bank.topics[row.id]), self.bank.topics[row.id], scores)

    def _explain_claim(self, text: str, claim: Claim, scores: _Scores) -> Reply:
        return self._claim_reply(text, "explain", compose.claim_explanation(claim), claim, scores)

    # --- follow-ups -----------------------------------------------------------------------------

    def _follow_up(self, text: str, previous: Reply | None) -> Reply | None:
        if len(text.split()) > 6:
            return None
        if _bare(_WHY, text):
            return self._why(text, previous)
        if _bare(_SHOW, text):
            return self._show(text, previous)
        about = _AND_ABOUT.match(text)
        if about and previous and previous.topics:
            reply = self._answer_fresh(text, previous, query=f"What about {about.group('rest')} in attention?")
            reply.follow_up = "about"
            return reply
        return None

    def _why(self, text: str, previous: Reply | None) -> Reply:
        if previous is None:
            return Reply(text, "decline", compose.NO_CONTEXT)
        if previous.claim_id:
            claim = self.bank.claims[previous.claim_id]
            reply = self._claim_reply(text, "explain", compose.why_claim(claim), claim, None)
        else:
            topic = self.bank.topics[previous.topics[0]]
            reply = self._topic_reply(text, "explain", compose.why_topic(topic), topic, None)
        reply.matches, reply.score, reply.follow_up = previous.matches, previous.score, "why"
        return reply

    def _show(self, text: str, previous: Reply | None) -> Reply:
        if previous is None:
            return Reply(text, "decline", compose.NO_CONTEXT)
        if previous.demo is None:
            answer = "**There is no live demo for my previous answer.** Its references are listed below."
        else:
            answer = compose.demo_line(previous.demo.title, previous.demo.on_learner_words)
        return Reply(
            text, "explain", answer, previous.claim_id, previous.verdict, list(previous.topics), previous.score,
            previous.matches, previous.demo, list(previous.references), follow_up="show",
        )

    def _boost_topics(self, similarities: np.ndarray, topics: list[str]) -> np.ndarray:
        wanted = set(topics)
        boost = np.array([
            FOLLOW_UP_BOOST if (row.id in wanted if row.source == "topic" else wanted & set(self.bank.claims[row.id].topics))
            else 0.0
            for row in self.index.phrasings
        ])
        return similarities + boost

    def _title(self, reply: Reply) -> str:
        topic = self.bank.topics.get(reply.topics[0]) if reply.topics else None
        return topic.title if topic else ""

    # --- building replies -----------------------------------------------------------------------

    def _reply(self, text: str, stance: Stance, answer: str, similarities: np.ndarray) -> Reply:
        return Reply(text, stance, answer, score=float(similarities.max()), matches=self._matches(similarities))

    def _claim_reply(self, text: str, stance: Stance, answer: str, claim: Claim, scores: _Scores | None) -> Reply:
        demo = self._demo_offer(claim, text)
        return self._finish(Reply(
            text, stance, answer, claim.id, claim.verdict, list(claim.topics),
            float(scores.similarities.max()) if scores else 0.0,
            self._matches(scores.similarities) if scores else [], demo,
        ), claim.references)

    def _topic_reply(self, text: str, stance: Stance, answer: str, topic: TopicPage, scores: _Scores | None) -> Reply:
        demo = self._topic_demo(topic, text)
        return self._finish(Reply(
            text, stance, answer, None, None, [topic.id],
            float(scores.similarities.max()) if scores else 0.0,
            self._matches(scores.similarities) if scores else [], demo,
        ), topic.references)

    def _finish(self, reply: Reply, references: list[Reference]) -> Reply:
        reply.references = [reference.cite() for reference in references]
        if reply.demo and reply.follow_up is None:
            reply.answer += "\n\n" + compose.demo_line(reply.demo.title, reply.demo.on_learner_words)
        reply.answer += "\n\n" + compose.references_block(references)
        return reply

    def _demo_offer(self, claim: Claim, text: str) -> DemoOffer | None:
        if claim.demo is None or claim.demo.id not in DEMOS:
            return None
        demo = DEMOS[claim.demo.id]
        learner_words = demo.id in SENTENCE_DEMOS and len(text.split()) >= 3
        prompt = read_cues(text).core[:300] if learner_words else claim.demo.prompt
        return DemoOffer(demo.id, demo.title, prompt, dict(claim.demo.params), learner_words)

    def _topic_demo(self, topic: TopicPage, text: str) -> DemoOffer | None:
        claims = [claim for claim in self.bank.claims.values() if claim.topics[0] == topic.id and claim.demo]
        claims.sort(key=lambda claim: (not claim.core, claim.id))
        return self._demo_offer(claims[0], text) if claims else None


_SENTENCE_END = re.compile(r"(?<=[.?!;])\s+")
MIN_SENTENCE_WORDS = 5
# Each sentence is embedded on its own, beside the whole message: without caps, 1,000 characters of
# short sentences cost 40 embeddings. Real questions have at most 4 sentences and 120 tokens (the dev
# and held-out sets); the whole message is read up to EMBED_MAX_TOKENS (256) tokens.
MAX_SENTENCES = 12
SENTENCE_TOKEN_BUDGET = EMBED_MAX_TOKENS


def _sentences(text: str) -> list[str]:
    """The sentences of a message that has several, each long enough to say something: the first
    MAX_SENTENCES different ones."""
    pieces = [piece.strip() for piece in _SENTENCE_END.split(text) if piece.strip()]
    if len(pieces) < 2:
        return []
    long_enough = [piece for piece in pieces if len(piece.split()) >= MIN_SENTENCE_WORDS]
    return list(dict.fromkeys(long_enough))[:MAX_SENTENCES]


def _on_subject(text: str) -> bool:
    """One specific word ("softmax", "BERT") or two generic ones ("keys" and "values") name the subject."""
    found = [word.lower() for word in SUBJECT_WORDS.findall(text)]
    specific = [word for word in found if not GENERIC_SUBJECT_WORDS.fullmatch(word)]
    return bool(specific) or len(set(found)) >= 2


def _is_open(cues: Cues) -> bool:
    """An open question ("what is...", "keys or values?") states nothing, so it cannot state a misconception."""
    return cues.wh_question or cues.either_or


def _bare(pattern: re.Pattern[str], text: str) -> bool:
    """"why?", "but why is that?", "show me": the cue with at most two more words, none on the subject."""
    found = pattern.match(text)
    if not found:
        return False
    rest = text[found.end():]
    return len(rest.split()) <= 2 and not SUBJECT_WORDS.search(rest)


def _is_short(text: str) -> bool:
    return len(text.split()) <= 6


@dataclass
class Conversation:
    """A chat's turns; follow-ups ("why?", "show me", "and values?") use the last answered one."""

    explainer: Explainer
    turns: list[tuple[str, Reply]] = field(default_factory=list)

    def ask(self, message: str | None) -> Reply:
        reply = self.explainer.answer(message, history=self)
        self.turns.append((message or "", reply))
        return reply

    def last_answered(self) -> Reply | None:
        for _message, reply in reversed(self.turns):
            if reply.stance != "decline":
                return reply
        return None


_default: Explainer | None = None
_default_lock = threading.Lock()


def default_explainer() -> Explainer:
    """The process-wide explainer over the default bank and the shared runtime."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Explainer(load_bank(dialogue=False), shared_runtime())
        return _default


def answer(message: str | None, history: Conversation | None = None) -> Reply:
    return default_explainer().answer(message, history)
