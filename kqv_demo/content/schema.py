"""The shape of the claim bank, as pydantic models. One claim per YAML file under content/claims/."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints, field_validator, model_validator

TOPICS: tuple[str, ...] = (
    "kl-divergence", "dot-product", "softmax", "query", "key", "value", "nosql", "fixed-depth",
    "layer-iteration", "heads", "residual-stream", "causal-mask", "bert", "decoder", "encoder",
    "sampling", "logits-confidence", "prompt-context", "learning-at-inference", "training",
    "neurons-concepts", "embeddings", "attention-weights-explanation", "early-exit", "scaling",
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
        return f"{self.authors} ({self.year}). {self.title}.{venue}{link}"


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


class Claim(Strict):
    id: Slug
    quote: Text  # verbatim from the dialogue (whitespace-normalised match)
    speaker: Literal["User", "Assistant"]
    line: int = Field(ge=1)
    also_at: list[int] = Field(default_factory=list)
    verdict: Verdict
    core: bool
    difficulty: Literal[1, 2, 3]
    topics: list[Topic] = Field(min_length=1, max_length=3)
    refutation: Refutation
    references: list[Reference] = Field(min_length=1)
    demo: DemoLink | None = None
    quiz: Quiz
    asked_as: list[Text] = Field(min_length=5)

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


class TopicPage(Strict):
    id: Topic
    title: Text
    summary: Text  # a short, correct explanation (Markdown with $LaTeX$)
    asked_as: list[Text] = Field(min_length=3)
    references: list[Reference] = Field(min_length=1)
    # Short, vetted, true statements a learner may make about this topic (sourced by `references`):
    # the explainer chat agrees with them, which keeps true near-misses of a misconception apart from it.
    true_statements: list[Text] = Field(default_factory=list)

    @field_validator("true_statements")
    @classmethod
    def statements_differ(cls, statements: list[str]) -> list[str]:
        if len(set(statements)) != len(statements):
            raise ValueError("true_statements repeat")
        return statements
