"""The shape of the claim bank, as pydantic models. One claim per YAML file under content/claims/."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints, field_validator, model_validator

TOPICS: tuple[str, ...] = (
    "kl-divergence", "dot-product", "softmax", "query", "key", "value", "nosql", "fixed-depth",
    "layer-iteration", "heads", "residual-stream", "causal-mask", "bert", "decoder", "encoder",
    "sampling", "logits-confidence", "prompt-context", "learning-at-inference", "training",
    "neurons-concepts", "embeddings", "attention-weights-explanation", "early-exit", "scaling",
    "kv-cache", "positions", "tokens", "feed-forward",
)
Topic = Literal[TOPICS]  # type: ignore[valid-type]
Verdict = Literal["false", "partly", "true"]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=80)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reference(Strict):
    authors: Text
    title: Text
    year: int = Field(ge=1900, le=2030)
    venue: str | None = None
    url: HttpUrl | None = None

    def cite(self) -> str:
        venue = f" {self.venue}." if self.venue else ""
        link = f" {self.url}" if self.url else ""
        title = self.title if self.title.endswith(("?", "!", ".")) else f"{self.title}."
        return f"{self.authors} ({self.year}). {title}{venue}{link}"


class Refutation(Strict):
    """A refutation text: the claim, the verdict, why it tempts, what is true, the evidence."""

    claim: Text  # the claim restated plainly
    verdict: Text  # an explicit verdict sentence
    tempting: Text  # why the wrong idea is tempting
    truth: Text  # what is actually true; Markdown with $LaTeX$
    evidence: Text  # what the live demo (or the source) shows
    right_part: str | None = None  # for partly-true claims: which part is right


class DemoLink(Strict):
    id: Slug
    prompt: str | None = None
    params: dict[str, int | float | str | bool] = Field(default_factory=dict)


class VerdictItem(Strict):
    statement: Text  # what the learner judges true / partly / false
    explanation: Text


class Option(Strict):
    text: Text
    correct: bool = False
    feedback: Text


class MultipleChoice(Strict):
    question: Text
    options: list[Option] = Field(min_length=4, max_length=4)

    @field_validator("options")
    @classmethod
    def exactly_one_right(cls, options: list[Option]) -> list[Option]:
        right = sum(option.correct for option in options)
        if right != 1:
            raise ValueError(f"needs exactly one correct option, has {right}")
        if len({option.text for option in options}) != len(options):
            raise ValueError("options must differ from each other")
        return options


class NumericItem(Strict):
    question: Text
    answer: float
    tolerance: float = Field(gt=0)
    unit: str = ""
    feedback: Text


class SpotTheError(Strict):
    text: Text  # usually the quote
    # who wrote `text`, about what: shown before it (without it, a line from the claim's origin)
    context: Text | None = None
    spans: list[Text] = Field(min_length=3, max_length=6)  # phrases of `text` to choose from
    wrong: int = Field(ge=0)  # index into spans of the wrong phrase
    feedback: Text

    @model_validator(mode="after")
    def spans_are_in_text(self) -> SpotTheError:
        missing = [span for span in self.spans if span not in self.text]
        if missing:
            raise ValueError(f"spans not found in text: {missing}")
        if self.wrong >= len(self.spans):
            raise ValueError(f"wrong={self.wrong} but there are only {len(self.spans)} spans")
        return self


class Quiz(Strict):
    verdict: VerdictItem
    multiple_choice: MultipleChoice
    numeric: NumericItem | None = None
    spot_the_error: SpotTheError | None = None


# How many phrasings of each kind a claim needs: they teach the chat's stance model what asserting,
# presupposing, asking about and contradicting the claim look like, and they test it.
MIN_PHRASINGS = {"states": 5, "presupposes": 2, "asks": 2}
MIN_CORRECTIONS = 2  # false and partly claims
MIN_TRUTH_STATES, MIN_TRUTH_ASKS = 3, 2  # a topic's vetted true statements


class Phrasings(Strict):
    """How learners say things about a claim, by what the message does with the claim's statement."""

    states: list[Text] = Field(default_factory=list)  # asserts it ("so keys are stored, right?")
    presupposes: list[Text] = Field(default_factory=list)  # takes it for granted ("why does attention use KL?")
    asks: list[Text] = Field(default_factory=list)  # a neutral question the claim answers: never refuted
    corrections: list[Text] = Field(default_factory=list)  # the truth in the misconception's own words

    def all(self) -> list[str]:
        return [*self.states, *self.presupposes, *self.asks, *self.corrections]


class Claim(Strict):
    id: Slug
    # Where the claim comes from: the source dialogue (quote, speaker and line required) or public posts
    # by learners (`seen_at`: the addresses where it was seen).
    origin: Literal["dialogue", "public"] = "dialogue"
    quote: str | None = None  # verbatim from the dialogue (whitespace-normalised match)
    speaker: Literal["User", "Assistant"] | None = None
    line: int | None = Field(default=None, ge=1)
    also_at: list[int] = Field(default_factory=list)
    seen_at: list[HttpUrl] = Field(default_factory=list)
    verdict: Verdict
    core: bool
    difficulty: Literal[1, 2, 3]
    topics: list[Topic] = Field(min_length=1, max_length=3)
    # False and partly claims: the wrong part alone, as one plain sentence a learner could say. The chat
    # refutes a message only when it asserts this (a partly claim's right part is never refuted).
    misconception: str | None = None
    refutation: Refutation
    references: list[Reference] = Field(min_length=1)
    demo: DemoLink | None = None
    # A false or partly claim that no model run can show (history, a product's behaviour, scaling results)
    # says why instead of linking a demo; its evidence then rests on its references.
    no_demo: str | None = None
    quiz: Quiz
    phrasings: Phrasings

    @field_validator("verdict", mode="before")
    @classmethod
    def yaml_booleans_are_verdicts(cls, value: object) -> object:
        # YAML reads an unquoted `false` as a boolean; accept it as the verdict it spells.
        return str(value).lower() if isinstance(value, bool) else value

    @model_validator(mode="after")
    def partly_claims_say_what_is_right(self) -> Claim:
        if self.verdict == "partly" and not self.refutation.right_part:
            raise ValueError("a 'partly' claim needs refutation.right_part (which part is right)")
        if len(set(self.topics)) != len(self.topics):
            raise ValueError("topics repeat")
        return self

    @model_validator(mode="after")
    def origin_is_documented(self) -> Claim:
        if self.origin == "dialogue":
            missing = [name for name in ("quote", "speaker", "line") if getattr(self, name) in (None, "")]
            if missing:
                raise ValueError(f"a claim from the dialogue needs {', '.join(missing)}")
            if self.seen_at:
                raise ValueError("seen_at is for public claims (origin: public)")
        else:
            if not self.seen_at:
                raise ValueError("a public claim needs seen_at: the address(es) where learners state it")
            if self.quote or self.speaker or self.line or self.also_at:
                raise ValueError("quote, speaker, line and also_at are for claims from the dialogue")
        return self

    @model_validator(mode="after")
    def enough_phrasings_of_each_kind(self) -> Claim:
        for kind, least in MIN_PHRASINGS.items():
            found = len(set(getattr(self.phrasings, kind)))
            if found < least:
                raise ValueError(f"phrasings.{kind} needs at least {least} different lines, has {found}")
        corrections = len(set(self.phrasings.corrections))
        if self.verdict == "true":
            if self.misconception or corrections:
                raise ValueError("a true claim has no misconception and no corrections")
        else:
            if not self.misconception or not self.misconception.strip():
                raise ValueError("a false or partly claim needs `misconception`: its wrong part in one sentence")
            if corrections < MIN_CORRECTIONS:
                raise ValueError(f"phrasings.corrections needs at least {MIN_CORRECTIONS} different lines, "
                                 f"has {corrections}")
        return self

    @model_validator(mode="after")
    def a_demo_or_why_not(self) -> Claim:
        if self.demo is not None and self.no_demo:
            raise ValueError("a claim has a demo or says why it has none (no_demo), not both")
        return self

    @property
    def statement(self) -> str:
        """What the claim says, as the chat compares messages with it: the misconception of a false or
        partly claim (its wrong part only), the claim itself when it is true."""
        return self.misconception if self.misconception else self.refutation.claim


class TrueStatement(Strict):
    """A vetted true statement a learner may make; the chat agrees with it (sourced by the topic's
    references), and its phrasings keep true near-misses of a misconception apart from it."""

    statement: Text
    states: list[Text] = Field(min_length=MIN_TRUTH_STATES)  # a learner asserting it
    asks: list[Text] = Field(min_length=MIN_TRUTH_ASKS)  # neutral questions it answers


class TopicPage(Strict):
    id: Topic
    title: Text
    summary: Text  # a short, correct explanation (Markdown with $LaTeX$)
    asks: list[Text] = Field(min_length=3)  # neutral questions the page answers
    references: list[Reference] = Field(min_length=1)
    truths: list[TrueStatement] = Field(default_factory=list)

    @field_validator("truths")
    @classmethod
    def statements_differ(cls, truths: list[TrueStatement]) -> list[TrueStatement]:
        texts = [truth.statement for truth in truths]
        if len(set(texts)) != len(texts):
            raise ValueError("true statements repeat")
        return truths

    @property
    def true_statements(self) -> list[str]:
        return [truth.statement for truth in self.truths]
