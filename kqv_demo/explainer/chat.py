"""The explainer chat: answers only from the vetted bank, corrects misconceptions, never agrees with one.

    explainer = default_explainer()                     # bank, retrieval index and stance model (cached)
    reply = explainer.answer("so attention uses KL divergence, right?")
    reply.stance, reply.rule, reply.claim_id            # "refute", "asserts-misconception", "kl-divergence-..."
    chat = Conversation(explainer)
    chat.ask("keys are stored in the model, right?"); chat.ask("why?")   # the follow-up keeps the claim

A message goes through four steps, each in its own module: retrieval (retrieval.py: which vetted
statements and pages it is about), stance (stance_model.py: whether it asserts, denies or only asks about
each of them; reading.py bounds the work), the rules (rules.py: an ordered list, every threshold in one
dataclass) and the reply (compose.py: built from the bank's vetted fields only).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from kqv_demo.content.loader import Bank, load_bank
from kqv_demo.content.schema import Claim, Reference, TopicPage
from kqv_demo.demos import DEMOS
from kqv_demo.explainer import compose
from kqv_demo.explainer.message import clean_message
from kqv_demo.explainer.reading import SUBJECT_WORDS, Candidate, Reading, read
from kqv_demo.explainer.retrieval import build_retriever
from kqv_demo.explainer.rules import (THRESHOLDS, Decision, Stance, Thresholds, decide, is_off_topic,
                                     nearest_page, vetted_explanation)
from kqv_demo.explainer.stance import read_cues
from kqv_demo.explainer.stance_model import StanceModel, build, share_frozen_weights
from kqv_demo.explainer.statements import vetted_statements
from kqv_demo.markup import literal
from kqv_demo.runtime import Runtime, one_thread, shared_runtime

FOLLOW_UP_BOOST = 0.05  # a short follow-up's retrieval favours the conversation's statement and topics
SHORT_MESSAGE_WORDS = 8
TOP_MATCHES = 5

_WHY = re.compile(r"^(?:but |and |so |ok |okay )?(?:why|how come|how so|why is that|why not|why so|is that so|"
                  r"explain why|why does it|why is it|why do they|really|says who|what makes you say that)\b", re.I)
_SHOW = re.compile(r"^(?:please |can you |could you |ok |okay |then )?(?:show me|show|demo|prove it|prove|"
                   r"run the demo|run it|let me see|evidence|proof|demonstrate)\b", re.I)
_AND_ABOUT = re.compile(r"^(?:and|and what about|what about|how about|and how about|same for|what of|and for)\s+"
                        r"(?:the\s+)?(?P<rest>.+?)[\s?!.]*$", re.I)


@dataclass(frozen=True)
class Match:
    """One vetted statement or page the message was compared with (shown under "Why this answer")."""

    source: str  # "claim" | "topic"
    id: str
    field: str  # misconception | correction | truth | page
    phrasing: str
    similarity: float
    asserts: float | None = None  # the stance model's reading, for statements


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
    answer: str  # Markdown from the bank (learner text in it is escaped)
    claim_id: str | None = None
    verdict: str | None = None
    topics: list[str] = field(default_factory=list)
    score: float = 0.0  # similarity of the statement or page the answer is about
    matches: list[Match] = field(default_factory=list)
    demo: DemoOffer | None = None
    references: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    follow_up: str | None = None  # "why" | "show" | "about" when answered from the conversation
    rule: str | None = None  # the rule that decided (rules.py), or the follow-up or cleaning step
    statement: str | None = None  # the vetted statement the stance is about
    statement_id: str | None = None
    quoted: str | None = None  # the part of the learner's message the refutation answers

    def as_json(self) -> dict:
        return {
            "text": self.text, "stance": self.stance, "rule": self.rule, "statement": self.statement,
            "claim_id": self.claim_id, "verdict": self.verdict, "topics": list(self.topics),
            "score": round(float(self.score), 4), "answer": self.answer,
        }


class Explainer:
    def __init__(self, bank: Bank, runtime: Runtime, stance_model: StanceModel | None = None,
                 limits: Thresholds = THRESHOLDS) -> None:
        self.bank = bank
        self.runtime = runtime
        self.limits = limits
        self.statements = vetted_statements(bank)
        self.by_id = {statement.id: statement for statement in self.statements}
        self.retriever = build_retriever(self.statements, bank, runtime)
        if stance_model is None:
            stance_model = build(bank, statements=self.statements)[0]
        # its frozen lower layers are MiniLM's own: hold one copy in the process, not two
        share_frozen_weights(stance_model.model, runtime.minilm.model)
        self.stance_model = stance_model

    # --- public ---------------------------------------------------------------------------------

    def answer(self, message: str | None, history: Conversation | None = None) -> Reply:
        """The reply to one message; `history` gives follow-ups ("why?", "show me") their context."""
        cleaned = clean_message(message)
        if cleaned.problem == "empty":
            return Reply(cleaned.text, "decline", compose.EMPTY, notices=cleaned.notices, rule="empty")
        if cleaned.problem == "not-english":
            return Reply(cleaned.text, "decline", compose.NOT_ENGLISH, notices=cleaned.notices, rule="not-english")
        previous = history.last_answered() if history else None
        reply = self._follow_up(cleaned.text, previous) or self._answer_fresh(cleaned.text, previous)
        reply.notices = cleaned.notices + reply.notices
        return reply

    def read(self, text: str, previous: Reply | None = None) -> Reading:
        """What the rules see: retrieval and stance for `text` (a short follow-up leans to `previous`)."""
        boost = self._conversation_boost(previous) if previous and _is_short(text) else None
        with one_thread():
            return read(text, self.retriever, self.stance_model, self.by_id, self.runtime.embed,
                        self.limits.candidates, boost, self.runtime.token_counts,
                        lambda best, subject: not is_off_topic(best, subject, self.limits))

    # --- deciding -------------------------------------------------------------------------------

    def _answer_fresh(self, text: str, previous: Reply | None, query: str | None = None) -> Reply:
        """The reply to `text`, read as `query` when the chat adds words to it (a follow-up read with its
        subject). Words the learner did not write are never judged: such a reading can only explain."""
        reading = self.read(query or text, previous)
        decision = decide(reading, self.limits)
        if query is not None and decision.stance in ("refute", "affirm"):
            decision = vetted_explanation(reading, self.limits) or nearest_page(reading, self.limits)
        if (decision.stance == "decline" and previous and query is None and _is_short(text)
                and SUBJECT_WORDS.search(text)):
            # "and the layers?" after a question on keys: read it together with the previous subject
            return self._answer_fresh(text, previous, query=f"{text} ({self._title(previous)})")
        return self._reply(text, reading, decision)

    def _conversation_boost(self, previous: Reply) -> dict[str, float]:
        boost: dict[str, float] = {}
        for statement in self.statements:
            if (previous.claim_id and statement.claim_id == previous.claim_id) or statement.id == previous.statement_id:
                boost[statement.id] = FOLLOW_UP_BOOST
            elif set(statement.topics) & set(previous.topics):
                boost[statement.id] = FOLLOW_UP_BOOST / 2
        for topic in previous.topics:
            boost[f"topic:{topic}"] = FOLLOW_UP_BOOST
        return boost

    # --- replies ----------------------------------------------------------------------------------

    def _reply(self, text: str, reading: Reading, decision: Decision) -> Reply:
        matches = self._matches(reading)
        if decision.stance == "decline":
            return Reply(text, "decline", compose.DECLINE, score=reading.best_similarity, matches=matches,
                         rule=decision.rule)
        candidate = decision.candidate
        if decision.nearest or candidate is None or (decision.topic_id and decision.rule == "explains-topic"):
            topic = self.bank.topics.get(decision.topic_id or (candidate.statement.topic_id if candidate else ""))
            if topic is None:
                return Reply(text, "decline", compose.DECLINE, score=reading.best_similarity, matches=matches,
                             rule=decision.rule)
            answer = compose.nearest_page(topic) if decision.nearest else compose.topic_explanation(topic)
            reply = self._topic_reply(text, "explain", answer, topic, reading.best_similarity)
        else:
            reply = self._statement_reply(text, reading, decision, candidate)
        reply.matches, reply.rule = matches, decision.rule
        return reply

    def _statement_reply(self, text: str, reading: Reading, decision: Decision, candidate: Candidate) -> Reply:
        statement = candidate.statement
        claim = self.bank.claims.get(statement.claim_id) if statement.claim_id else None
        cues = reading.parts[candidate.part].cues
        quoted = reading.part_text(candidate) if decision.stance == "refute" else None
        if claim is not None:
            if decision.stance == "refute":
                answer = compose.refutation(claim, cues.authority or reading.cues.authority, literal(quoted))
            elif decision.rule == "denies-misconception":
                answer = compose.learner_rejects_misconception(claim)
            elif decision.stance == "affirm":
                answer = (compose.claim_affirmation(claim) if claim.verdict == "true"
                          else compose.correction_affirmation(claim, statement.text))
            else:
                answer = compose.claim_explanation(claim)
            reply = self._claim_reply(text, decision.stance, answer, claim, candidate.similarity)
        else:
            topic = self.bank.topics[statement.topic_id]
            answer = (compose.topic_affirmation(topic, statement.text) if decision.stance == "affirm"
                      else compose.truth_explanation(topic, statement.text))
            reply = self._topic_reply(text, decision.stance, answer, topic, candidate.similarity)
        reply.statement, reply.statement_id, reply.quoted = statement.text, statement.id, quoted
        return reply

    def _matches(self, reading: Reading) -> list[Match]:
        found = []
        for candidate in reading.candidates[:TOP_MATCHES]:
            statement = candidate.statement
            kind = statement.id.split(":", 1)[0]
            source, owner = ("claim", statement.claim_id) if statement.claim_id else ("topic", statement.topic_id)
            found.append(Match(source, owner or "", kind, statement.text, round(candidate.similarity, 4),
                               round(candidate.asserts, 4)))
        return found

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
            # "and the keys?" names its own subject: the page on it when there is one, else what the
            # words match, with the previous subject read along only if they alone match nothing
            named = self._topic_named(about.group("rest"))
            if named is not None:
                reply = self._topic_reply(text, "explain", compose.topic_explanation(named), named, previous.score)
                reply.rule = "follow-up-about-topic"
            elif SUBJECT_WORDS.search(about.group("rest")):
                query = f"What about {about.group('rest')} in attention?"
                reply = self._answer_fresh(text, None, query=query)
                if reply.stance == "decline":
                    reply = self._answer_fresh(text, previous, query=f"{query} ({self._title(previous)})")
            else:
                return None  # "and pizza?" names nothing of the subject: answered as it stands
            reply.follow_up = "about"
            return reply
        return None

    def _why(self, text: str, previous: Reply | None) -> Reply:
        if previous is None:
            return Reply(text, "decline", compose.NO_CONTEXT, rule="follow-up-without-context")
        if previous.claim_id:
            claim = self.bank.claims[previous.claim_id]
            reply = self._claim_reply(text, "explain", compose.why_claim(claim), claim, previous.score)
        else:
            topic = self.bank.topics[previous.topics[0]]
            reply = self._topic_reply(text, "explain", compose.why_topic(topic), topic, previous.score)
        reply.matches, reply.follow_up, reply.rule = previous.matches, "why", "follow-up-why"
        reply.statement, reply.statement_id = previous.statement, previous.statement_id
        return reply

    def _show(self, text: str, previous: Reply | None) -> Reply:
        if previous is None:
            return Reply(text, "decline", compose.NO_CONTEXT, rule="follow-up-without-context")
        if previous.demo is None:
            answer = "**There is no live demo for my previous answer.** Its references are listed below."
        else:
            answer = compose.demo_line(previous.demo.title, previous.demo.on_learner_words)
        return Reply(
            text, "explain", answer, previous.claim_id, previous.verdict, list(previous.topics), previous.score,
            previous.matches, previous.demo, list(previous.references), follow_up="show", rule="follow-up-show",
            statement=previous.statement, statement_id=previous.statement_id,
        )

    def _topic_named(self, words: str) -> TopicPage | None:
        """The topic page whose id `words` names ("the keys" -> key, "kv cache" -> kv-cache), if any."""
        name = re.sub(r"^(?:the|a|an)\s+", "", words.strip().lower()).replace(" ", "-")
        singular = name[:-3] + "y" if name.endswith("ies") else name.removesuffix("s")
        return self.bank.topics.get(name) or self.bank.topics.get(singular)

    def _title(self, reply: Reply) -> str:
        topic = self.bank.topics.get(reply.topics[0]) if reply.topics else None
        return topic.title if topic else ""

    # --- building replies -----------------------------------------------------------------------

    def _claim_reply(self, text: str, stance: Stance, answer: str, claim: Claim, score: float) -> Reply:
        return self._finish(Reply(text, stance, answer, claim.id, claim.verdict, list(claim.topics), score,
                                  demo=self._demo_offer(claim, text)), claim.references)

    def _topic_reply(self, text: str, stance: Stance, answer: str, topic: TopicPage, score: float) -> Reply:
        return self._finish(Reply(text, stance, answer, None, None, [topic.id], score,
                                  demo=self._topic_demo(topic, text)), topic.references)

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
        learner_words = demo.reads_sentence and len(text.split()) >= 3
        prompt = read_cues(text).core[:300] if learner_words else claim.demo.prompt
        return DemoOffer(demo.id, demo.title, prompt, dict(claim.demo.params), learner_words)

    def _topic_demo(self, topic: TopicPage, text: str) -> DemoOffer | None:
        claims = [claim for claim in self.bank.claims.values() if claim.topics[0] == topic.id and claim.demo]
        claims.sort(key=lambda claim: (not claim.core, claim.id))
        return self._demo_offer(claims[0], text) if claims else None


def _bare(pattern: re.Pattern[str], text: str) -> bool:
    """"why?", "but why is that?", "show me": the cue with at most two more words, none on the subject."""
    found = pattern.match(text)
    if not found:
        return False
    rest = text[found.end():]
    return len(rest.split()) <= 2 and not SUBJECT_WORDS.search(rest)


def _is_short(text: str) -> bool:
    return len(text.split()) <= SHORT_MESSAGE_WORDS


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
