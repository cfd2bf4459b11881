"""What every demo is: parameters, a pure computation, a chart, and words.

    demo = DEMOS["attention-by-hand"]
    result = demo.run(runtime, "The cat sat", layer=3, head=4)   # a small dataclass of numbers
    demo.chart(result)       # an Altair chart (interactive in the app, PNG/SVG for handouts)
    demo.explain(result)     # "what you are seeing", with this run's numbers
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

import altair as alt
import numpy as np

from kqv_demo.errors import UserInputError

if TYPE_CHECKING:
    import torch

    from kqv_demo.trace import ModelShape, Trace

ParamKind = Literal["layer", "head", "int", "float", "bool", "text"]


@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind
    default: int | float | bool | str
    label: str = ""
    low: float | None = None  # for int and float
    high: float | None = None
    help: str = ""


class DemoRuntime(Protocol):
    """What a demo may ask of the models (kqv_demo.runtime.Runtime gives it). Shapes, tokens and text go
    through here, never through a Hugging Face tokenizer or config, so that a demo reads the same on any
    model the runtime loads. `model` is "smollm2" (the default) or "minilm"."""

    def shape(self, model: str = ...) -> ModelShape: ...
    def tokenize(self, prompt: str, model: str = ..., max_tokens: int = ...) -> tuple[list[int], Any]: ...
    def encode(self, text: str, model: str = ...) -> list[int]: ...
    def encode_with_offsets(self, text: str, model: str = ...) -> tuple[list[int], list[tuple[int, int]]]: ...
    def decode(self, ids: Sequence[int], model: str = ..., *, skip_special_tokens: bool = ...,
               clean_up_spaces: bool | None = ...) -> str: ...
    def token_texts(self, ids: Sequence[int], model: str = ...) -> list[str]: ...
    def special_ids(self, model: str = ...) -> set[int]: ...
    def end_of_text_id(self, model: str = ...) -> int | None: ...
    def trace(self, prompt: str, **options: Any) -> Trace: ...
    def trace_batch(self, prompts: list[str], **options: Any) -> list[Trace]: ...
    def generate(self, prompt: str, max_new_tokens: int, **options: Any) -> tuple[list[int], Any, list[Any]]: ...
    def branch_logits(self, context_ids: list[int], branches: list[list[int]]) -> tuple[torch.Tensor, Any]: ...
    def logits_from_block(self, hidden: torch.Tensor, block: int) -> torch.Tensor: ...
    def chat_prompt(self, message: str) -> str: ...
    def parameter(self, name: str, model: str = ...) -> torch.Tensor: ...
    def parameter_shapes(self, model: str = ...) -> dict[str, tuple[int, ...]]: ...
    def parameter_hashes(self, model: str = ...) -> dict[str, bytes]: ...
    def hashes_at_load(self) -> dict[str, bytes]: ...
    def reference_logits(self) -> torch.Tensor: ...
    def reference_logits_at_load(self) -> torch.Tensor: ...
    def embed(self, texts: list[str]) -> np.ndarray: ...


R = TypeVar("R")  # the demo's result: a dataclass of numbers


@dataclass(frozen=True)
class Demo(Generic[R]):
    id: str
    title: str
    summary: str  # what it shows, one paragraph
    default_prompt: str
    compute: Callable[..., R]  # compute(runtime: DemoRuntime, prompt, **params) -> R
    chart: Callable[[R], alt.TopLevelMixin | None]
    explain: Callable[[R], str]
    headline: Callable[[R], list[tuple[str, str]]]  # (label, value) pairs shown as metrics
    params: tuple[Param, ...] = ()
    prompt_label: str = "Your sentence"
    status: Callable[[R], tuple[bool, str]] | None = None  # a one-line pass/fail of the shown fact
    details: Callable[[R], str] | None = None  # Markdown: the formula and the code behind it
    # True when the demo shows its fact on any sentence, so the chat runs it on the learner's own words;
    # False when it needs its own prompt (a fact about particular words, a cloze, a fixed comparison)
    reads_sentence: bool = False

    def bounds(self, param: Param, runtime: DemoRuntime) -> tuple[float | None, float | None]:
        shape = runtime.shape()
        if param.kind == "layer":
            return 0, shape.n_layers - 1
        if param.kind == "head":
            return 0, shape.n_heads - 1
        return param.low, param.high

    def check(self, runtime: DemoRuntime, params: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in, types converted, ranges checked; a clear message otherwise."""
        known = {param.name: param for param in self.params}
        unknown = set(params) - set(known)
        if unknown:
            raise UserInputError(
                f"{self.title} has no parameter {', '.join(sorted(unknown))}; "
                f"it takes: {', '.join(known) or 'none'}."
            )
        checked = {}
        for name, param in known.items():
            value = params.get(name, param.default)
            checked[name] = self._convert(param, value, runtime)
        return checked

    def _convert(self, param: Param, value: Any, runtime: Any) -> Any:
        label = param.label or param.name
        if param.kind == "bool":
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise UserInputError(f"{label} must be true or false, not {value!r}.")
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if param.kind == "text":
            return str(value)
        number_type = float if param.kind == "float" else int
        try:
            number = number_type(value)
        except (TypeError, ValueError):
            raise UserInputError(
                f"{label} must be a{'' if number_type is int else ' decimal'} number, not {value!r}."
            ) from None
        if number_type is float and not math.isfinite(number):
            raise UserInputError(f"{label} must be a finite number.")
        low, high = self.bounds(param, runtime)
        if (low is not None and number < low) or (high is not None and number > high):
            what = {"layer": "Layer", "head": "Head"}.get(param.kind, label)
            raise UserInputError(f"{what} {value} is out of range: choose from {low:g} to {high:g}.")
        return number

    def run(self, runtime: DemoRuntime, prompt: str | None = None, **params: Any) -> R:
        return self.compute(
            runtime, prompt if prompt is not None else self.default_prompt, **self.check(runtime, params)
        )


MESSAGE_TOKENS = 40  # an error message lists at most this many tokens of the learner's text
MESSAGE_TEXT_CHARS = 80  # and quotes at most this much of it: a 2 KB prompt made a message of two screens


def quoted_for_message(text: str, tokens: list[str]) -> tuple[str, str]:
    """The learner's text and its tokens as an error message shows them: cut, and saying so."""
    from kqv_demo.markup import shortened

    shown = " | ".join(token.strip() for token in tokens[:MESSAGE_TOKENS])
    if len(tokens) > MESSAGE_TOKENS:
        shown += f" | … ({len(tokens)} tokens in all)"
    return repr(shortened(text, MESSAGE_TEXT_CHARS)), shown


def check_layer_head(shape: Any, layer: int, head: int | None = None) -> None:
    """For computations called directly (not through `Demo.check`): a clear message, not an IndexError."""
    if not 0 <= layer < shape.n_layers:
        raise UserInputError(f"Layer {layer} does not exist: {shape.name} has layers 0 to {shape.n_layers - 1}.")
    if head is not None and not 0 <= head < shape.n_heads:
        raise UserInputError(f"Head {head} does not exist: {shape.name} has heads 0 to {shape.n_heads - 1}.")


def jsonable(value: Any) -> Any:
    """A demo result as plain JSON types (arrays become nested lists, rounded)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (np.floating, float)):
        number = float(value)
        return round(number, 8) if math.isfinite(number) else str(number)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
