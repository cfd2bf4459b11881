"""Answer texts, built only from the bank's vetted fields (Markdown with $LaTeX$). The only learner text is
the quoted part of a refuted message, which the caller passes already escaped (kqv_demo.markup.literal)."""

from __future__ import annotations

from kqv_demo.content.schema import Claim, Reference, TopicPage

OPENINGS = {
    "false": "**No: that is a common misconception.**",
    "partly": "**Partly: part of that is right, but not all of it.**",
}
AUTHORITY_NOTE = "Who said it does not decide what is true; the evidence below does."
DECLINE = (
    "**I don't have a vetted answer for that.** I answer questions about attention in transformers "
    "(queries, keys, values, softmax, heads, layers, decoding, and the misconceptions around them) only "
    "from a reviewed bank of claims, and I would rather say so than invent an answer."
)
EMPTY = "**Please type a question or a statement** about attention, for example “what does softmax do here?”."
NOT_ENGLISH = (
    "**I can only answer in English.** My retrieval model (all-MiniLM-L6-v2) reads English only, so I "
    "cannot match this message to the vetted bank. Please ask again in English."
)
NO_CONTEXT = (
    "**Ask me a full question first.** A follow-up such as “why?” or “show me” refers to my previous "
    "answer, and there is none yet in this conversation."
)


def references_block(references: list[Reference]) -> str:
    return "**References**\n\n" + "\n".join(f"- {reference.cite()}" for reference in references)


def refutation(claim: Claim, authority: bool, quoted_literal: str | None = None) -> str:
    """The correction. `quoted_literal`: the part of the learner's message that states the misconception,
    escaped by the caller."""
    text = claim.refutation
    parts = [OPENINGS[claim.verdict]]
    if quoted_literal:
        parts.append(f"**You wrote:** “{quoted_literal}”")
    if authority:
        parts.append(AUTHORITY_NOTE)
    parts.append(f"**The misconception.** {claim.statement}")
    parts.append(f"**Verdict.** {text.verdict}")
    if claim.verdict == "partly" and text.right_part:
        parts.append(f"**What is right.** {text.right_part}")
    parts.append(f"**What is actually true.**\n\n{text.truth}")
    parts.append(f"**Why it is tempting.** {text.tempting}")
    parts.append(f"**The evidence.** {text.evidence}")
    return "\n\n".join(parts)


def learner_rejects_misconception(claim: Claim) -> str:
    """The learner denied the misconception; say so without echoing their words."""
    text = claim.refutation
    what = "wrong" if claim.verdict == "false" else "not entirely right"
    parts = [
        f"**If you mean that the following idea is {what}, you are right:** {text.claim}",
        f"**Verdict.** {text.verdict}",
    ]
    if claim.verdict == "partly" and text.right_part:
        parts.append(f"**What is right in it.** {text.right_part}")
    parts.append(f"**What is actually true.**\n\n{text.truth}")
    parts.append(f"**The evidence.** {text.evidence}")
    return "\n\n".join(parts)


def claim_explanation(claim: Claim) -> str:
    """A neutral question answered from a claim: the truth first, then the misconception to avoid."""
    text = claim.refutation
    if claim.verdict == "true":
        return f"**What the vetted bank says.**\n\n{text.truth}\n\n**The evidence.** {text.evidence}"
    return (
        f"**What the vetted bank says.**\n\n{text.truth}\n\n"
        f"**A common misconception here.** {text.claim} {text.verdict}\n\n**The evidence.** {text.evidence}"
    )


def claim_affirmation(claim: Claim) -> str:
    text = claim.refutation
    return f"**Yes, that is right.** {text.verdict}\n\n{text.truth}\n\n**The evidence.** {text.evidence}"


def correction_affirmation(claim: Claim, correction: str) -> str:
    """The learner stated the truth that corrects a misconception of the bank."""
    text = claim.refutation
    return (f"**Yes, that is right.** {correction}\n\n**What is actually true.**\n\n{text.truth}\n\n"
            f"**A common misconception here.** {claim.statement} {text.verdict}\n\n**The evidence.** {text.evidence}")


def topic_explanation(topic: TopicPage) -> str:
    return f"**{topic.title}**\n\n{topic.summary.strip()}"


def truth_explanation(topic: TopicPage, statement: str) -> str:
    """A question answered from a vetted true statement, with its topic page."""
    return f"**What the vetted bank says.** {statement}\n\n{topic_explanation(topic)}"


def nearest_page(topic: TopicPage) -> str:
    """On topic, but nothing vetted answers exactly this message: say so before giving the nearest page."""
    return (
        "**I have no vetted answer for exactly that.** Rather than guess, here is the nearest topic page I have; "
        "it may not answer your question.\n\n"
        f"**Nearest page: {topic.title}**\n\n{topic.summary.strip()}"
    )


def topic_affirmation(topic: TopicPage, statement: str) -> str:
    return f"**Yes, that is right.** {statement}\n\n**More on {topic.title.lower()}.**\n\n{topic.summary.strip()}"


def statement_with_other_polarity(topic: TopicPage, statement: str) -> str:
    """The learner's statement looks like the opposite of a vetted true statement: state the vetted one."""
    return f"**Careful: here is what is true.** {statement}\n\n{topic_explanation(topic)}"


def why_claim(claim: Claim) -> str:
    text = claim.refutation
    return (
        f"**Why the idea is tempting.** {text.tempting}\n\n**What is true instead.**\n\n{text.truth}\n\n"
        f"**How we know.** {text.evidence}"
    )


def why_topic(topic: TopicPage) -> str:
    return (
        f"**Why: the reasoning behind {topic.title.lower()}.**\n\n{topic.summary.strip()}\n\n"
        "The references below give the primary sources."
    )


def demo_line(title: str, on_learner_words: bool) -> str:
    where = "on your own words" if on_learner_words else "on the real model"
    return f"**See it live:** “{title}”, computed {where} (run it below, or in the Demo lab)."
