"""How a message is phrased, from its words alone: question or assertion, asking for confirmation,
negated, hedged, leaning on an authority. No model here; `chat` combines these cues with retrieval.

    cues = read_cues("My professor said attention uses KL divergence, confirm?")
    cues.authority, cues.confirmation, cues.core    # True, True, "attention uses KL divergence"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FLAGS = re.IGNORECASE

# "..., right?", "isn't it?", "confirm?": the learner wants agreement with what precedes.
_CONFIRMATION_TAIL = re.compile(
    r"[\s,;:.!-]*\b(?:right|rite|ryt|correct|true|yes|yeah|no|ok|okay|agree|agreed|confirm|confirmed|am i right|"
    r"is that (?:right|correct|true|so)|isn'?t (?:it|that|this) (?:right|so|true|correct)?|"
    r"(?:is|are|do|does|did|was|were|can|could|would|will|has|have)n'?t (?:it|they|there|he|she|that|this|we|you)|"
    r"(?:is|are|do|does|did) (?:it|they|there) not|yes or no|true or false|innit|eh|huh|no\?)"
    r"(?:\s+or\s+not)?[\s?!.]*$",
    _FLAGS,
)
_CONFIRMATION_REQUEST = re.compile(
    r"\b(?:confirm|agree|say yes|back me up|am i right|am i correct|is (?:it|that|this) (?:true|right|correct) that|"
    r"tell me (?:i'?m|i am) right|just say|verify|validate|sanity check)\b",
    _FLAGS,
)
# "my professor said", "I read that": who said it does not change what is true.
_AUTHORITY = re.compile(
    r"^(?:.{0,40}?\b(?:professor|prof|teacher|lecturer|instructor|tutor|boss|colleague|friend|textbook|book|paper|"
    r"article|blog|video|youtube|course|class|study group|everyone|everybody|chatgpt|an? (?:ai|chatbot)|experts?|"
    r"people|they|someone|somebody|my \w+)\b[^.?!]{0,40}?\b(?:said|says|say|told me|tells us|told us|insists?|"
    r"claims?|claimed|thinks?|believes?|agrees?|wrote|writes|states?|explained|taught|teaches|mentioned)\b"
    r"(?:\s+that)?[\s,:]*|(?:i\s+(?:read|heard|saw|learned|learnt)(?:\s+somewhere)?(?:\s+that)?)\s*)",
    _FLAGS,
)
_SELF_ASSURED = re.compile(
    r"\b(?:i'?m|i am) (?:\d+% |pretty |very |quite |absolutely |totally )?(?:sure|certain|positive|convinced)\b"
    r"(?: that)?",
    _FLAGS,
)
_FLATTERY = re.compile(
    r"^(?:you'?re|you are) (?:the|an?) (?:expert|genius|ai)[^,.]*[,.]\s*(?:so\s+)?(?:surely\s+)?"
    r"(?:you(?:'ll| will)? agree(?:s)? (?:that)?)?\s*",
    _FLAGS,
)
_HEDGE = re.compile(
    r"\b(?:i think|i guess|i believe|i suppose|i assume|i feel like|probably|maybe|perhaps|kind of|sort of|"
    r"basically|apparently|if i understand|as i understand it|from what i understand|so)\b",
    _FLAGS,
)
# Negations about the learner's own knowledge, not about the content ("I'm not sure, but...").
_META_NEGATION = re.compile(
    r"\b(?:i'?m not sure|i am not sure|not sure|i (?:do not|don'?t) (?:know|understand|get|see)|"
    r"correct me if i'?m wrong|if i'?m not mistaken|or not|whether or not|i can'?t remember|"
    r"i (?:do not|don'?t) remember|(?:don'?t|do not) you think|wouldn'?t you (?:say|agree)|can'?t you|"
    r"why not|no idea)\b"
    # a tag question asks for agreement, it does not deny: "they're just big BERTs, aren't they?"
    r"|\b(?:is|are|was|were|do|does|did|has|have|had|could|would|should|must|ca|wo)n[’']?t\s+"
    r"(?:it|they|there|that|this|he|she|you|we|i)\s*\?"
    r"|\b(?:is|are|was|were|do|does|did|has|have|can|could|will|would|should)\s+"
    r"(?:it|they|there|that|this|he|she|you|we|i)\s+not\s*\?",
    _FLAGS,
)
_NEGATION = re.compile(
    r"(?:\b(?:not|no|never|none|nothing|nobody|neither|nor|without|cannot|impossible|hardly|barely|scarcely|"
    r"isnt|doesnt|dont|arent|wont|cant|didnt|hasnt|havent|wasnt|werent|shouldnt|couldnt|wouldnt)\b|\w+n[’']t\b)",
    _FLAGS,
)
_CONTRAST = re.compile(
    r"\s*(?:;|,?\s*\bbut\b|,?\s*\binstead\b(?:\s+of)?|,?\s*\brather than\b"
    r"|,\s*(?=(?:it|they|that)(?:'s|'re|\s)))\s*",
    _FLAGS,
)
_WH_START = re.compile(
    r"^(?:(?:and|so|ok|okay|but|then|hmm|hey|hi|hello|please)[\s,]+)*"
    r"(?:what|what's|whats|wat|how|how's|why|why's|where|which|who|whom|when|explain|describe|define|"
    r"tell me|can you (?:explain|tell|describe|show)|could you (?:explain|tell|describe)|help me understand|"
    r"i (?:want|would like|'d like) to (?:know|understand)|in what)\b",
    _FLAGS,
)
_IMPERATIVE = re.compile(r"^(?:please\s+)?(?:explain|describe|define|tell me|help me)\b", _FLAGS)
_YES_NO_START = re.compile(
    r"^(?:(?:and|so|ok|okay|but|then|hmm|hey|hi|hello|please|quick question)[\s,:]+)*"
    r"(?:is|are|was|were|do|does|did|can|could|will|would|should|has|have|had|isn't|aren't|doesn't|don't|"
    r"didn't|can't|won't)\b",
    _FLAGS,
)
_EITHER_OR = re.compile(r"\b\w+\s+or\s+(?!not\b)\w+[^?]*\?\s*$", _FLAGS)


@dataclass(frozen=True)
class Cues:
    core: str  # the statement to judge: authority lead-ins and confirmation tails removed
    question: bool  # ends with "?" or opens like a question
    wh_question: bool  # what/how/why/explain... asks for an explanation, not a verdict
    yes_no: bool  # "Is/Does/Can ...?": asks whether something is true
    either_or: bool  # "keys or values?": asks to choose, presupposes neither
    confirmation: bool  # "right?", "confirm?", "don't they?"
    authority: bool  # "my professor said ...", "I'm 100% sure ..."
    hedged: bool  # "I think", "maybe", "so ..."
    negated: bool  # the core statement contains a negation (meta-negations excluded)

    @property
    def seeks_verdict(self) -> bool:
        """The learner states something or asks whether it is true (vs asking for an explanation)."""
        return not self.wh_question or self.confirmation or self.authority


def _strip_lead_ins(text: str) -> tuple[str, bool]:
    core, authority = text, False
    for pattern in (_FLATTERY, _AUTHORITY, _SELF_ASSURED):
        stripped = pattern.sub("", core, count=1).strip()
        if stripped != core and len(stripped) >= 8:
            core, authority = stripped, True
    return core, authority


def _strip_requests(text: str) -> str:
    """Drop trailing sentences that only ask for agreement ("Can you confirm?", "Agree?")."""
    sentences = re.split(r"(?<=[.?!])\s+", text)
    while len(sentences) > 1 and _CONFIRMATION_REQUEST.search(sentences[-1]) and len(sentences[-1].split()) <= 12:
        sentences.pop()
    return " ".join(sentences)


def has_negation(text: str) -> bool:
    """Does the statement deny something? ("attention does not use KL", "keys aren't stored")."""
    return bool(_NEGATION.search(_META_NEGATION.sub(" ", text)))


def contrast_clauses(text: str) -> tuple[str, str] | None:
    """("doesn't use dot products", "it uses KL divergence") for a statement that denies one thing and
    asserts another; None when there is no such contrast."""
    pieces = [piece.strip() for piece in _CONTRAST.split(text) if piece and piece.strip()]
    if len(pieces) < 2:
        return None
    negated = [piece for piece in pieces if has_negation(piece)]
    asserted = [piece for piece in pieces if not has_negation(piece) and len(piece.split()) >= 2]
    if not negated or not asserted:
        return None
    return negated[0], asserted[0]


def read_cues(text: str) -> Cues:
    core, authority = _strip_lead_ins(text.strip())
    core = _strip_requests(core)
    confirmation = bool(_CONFIRMATION_TAIL.search(core)) or bool(_CONFIRMATION_REQUEST.search(text))
    core = _CONFIRMATION_TAIL.sub("", core).strip(" ,;:-") or core
    authority = authority or bool(_SELF_ASSURED.search(text))
    # "What gets passed on is a query vector." opens like a question but asserts.
    wh = bool(_WH_START.search(core)) and not (core.endswith(".") and not _IMPERATIVE.search(core))
    yes_no = bool(_YES_NO_START.search(core)) and not wh
    return Cues(
        core=core,
        question=text.rstrip().endswith("?") or wh or yes_no,
        wh_question=wh,
        yes_no=yes_no,
        either_or=bool(_EITHER_OR.search(text)) and (wh or yes_no),
        confirmation=confirmation,
        authority=authority,
        hedged=bool(_HEDGE.search(text)),
        negated=has_negation(core),
    )


# "replaced recurrence", "instead of KL": the statement denies what it names, like a negation.
_REMOVAL = re.compile(
    r"\b(?:replac\w*|instead|rather than|got rid|get rid|eliminat\w*|remov\w*|drop(?:s|ped)?)\b", re.I
)


def polarity(text: str) -> bool:
    """True when the statement denies something (a negation, or "replaced X", "instead of X")."""
    return has_negation(text) or bool(_REMOVAL.search(text))


# Terms that exclude each other in this subject: a statement with one cannot agree with a phrasing with
# the other ("BERT is decoder-only" vs "BERT is bidirectional").
OPPOSITES = [
    ("decoder", "encoder"), ("decoder", "bidirectional"), ("causal", "bidirectional"), ("left", "both"),
    ("future", "past"), ("later", "earlier"), ("future", "earlier"), ("parallel", "sequence"),
    ("parallel", "sequential"), ("parallel", "chain"), ("parallel", "after another"), ("fixed", "dynamic"),
    ("fixed", "vary"), ("fixed", "varies"), ("fixed", "changes"), ("soft", "hard"), ("frozen", "update"),
    ("frozen", "learn"), ("dot product", "kl"), ("values", "keys"), ("value", "key"), ("all", "only"),
    ("every", "only"), ("recurrence", "attention"), ("recurrent", "attention"),
]


def conflicting_terms(statement: str, phrasing: str) -> tuple[str, str] | None:
    """A pair of opposite terms, one only in `statement` and the other only in `phrasing`."""
    said, vetted = statement.lower(), phrasing.lower()

    def has(text: str, term: str) -> bool:
        return re.search(rf"\b{re.escape(term)}", text) is not None

    for first, second in OPPOSITES:
        for mine, theirs in ((first, second), (second, first)):
            if has(said, mine) and not has(said, theirs) and has(vetted, theirs) and not has(vetted, mine):
                return mine, theirs
    return None
