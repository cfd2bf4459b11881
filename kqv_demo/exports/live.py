"""What the real models contribute to an export, computed once at export time.

Figures: each claim's demo run on its own inputs and charted as a PNG (the same inputs give one
figure, shared by every question that uses it). Predictions: a "predict" item's right answer is
what the model does, so the demo is run and the answer read off the result, as in the app.

Runs are cached for the whole process (`RUNS`): a demo with the same prompt and parameters is
computed and charted once, then shared by every export of every session. Export inputs come from
the bank (each claim's demo, each prediction), so the runs any export can need are few (49 for the
whole bank) and the cache holds them all: after the first export, building another costs no model work.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kqv_demo.content.loader import Bank
from kqv_demo import demos  # demos.DEMOS (and torch) is imported on first use: Moodle and GIFT need no model
from kqv_demo.quiz.items import Item
from kqv_demo.quiz.predict import PREDICTIONS_BY_ITEM, check_observed

Progress = Callable[[str], None]
RunKey = tuple[str, str, tuple[tuple[str, Any], ...]]  # demo id, prompt, sorted params


@dataclass(frozen=True)
class Figure:
    number: int
    demo_id: str
    title: str  # the demo's title
    caption: str  # one line from the demo's headline numbers
    inputs: str  # the prompt and parameters it ran on
    png: bytes | None  # None when the demo has no chart

    @property
    def description(self) -> str:
        """What the figure shows and what it was computed on, for its caption."""
        return f"{self.title}, computed {self.inputs}. {self.caption}"


@dataclass
class Live:
    """Figures by run, which figure goes with which claim or prediction, and answered predictions."""

    figures: dict[RunKey, Figure] = field(default_factory=dict)
    claim_figure: dict[str, RunKey] = field(default_factory=dict)
    prediction_figure: dict[str, RunKey] = field(default_factory=dict)
    answered: dict[str, Item] = field(default_factory=dict)  # predict item id -> item with answer and feedback

    def figure_for(self, item: Item) -> Figure | None:
        key = self.prediction_figure.get(item.id) if item.kind == "predict" else self.claim_figure.get(item.claim_id)
        return self.figures.get(key) if key else None


def _run_key(demo_id: str, prompt: str | None, params: dict[str, Any]) -> RunKey:
    demo = demos.DEMOS[demo_id]
    return demo_id, prompt or demo.default_prompt, tuple(sorted(params.items()))


def runs_needed(bank: Bank, items: Iterable[Item],
                figures: bool) -> tuple[dict[str, RunKey], dict[str, RunKey]]:
    """The live demo runs the items' figures need: (claim id -> run, prediction item id -> run). Claim
    figures only when `figures`; prediction items always, since their answer is a live run."""
    claim_runs: dict[str, RunKey] = {}
    prediction_runs: dict[str, RunKey] = {}
    for item in items:
        if item.kind == "predict":
            prediction = PREDICTIONS_BY_ITEM[item.id]
            prediction_runs[item.id] = _run_key(prediction.demo_id, prediction.prompt, prediction.params)
            continue
        claim = bank.claims.get(item.claim_id)
        if figures and claim is not None and claim.demo is not None and claim.demo.id in demos.DEMO_IDS:
            claim_runs.setdefault(claim.id, _run_key(claim.demo.id, claim.demo.prompt, dict(claim.demo.params)))
    return claim_runs, prediction_runs


Value = TypeVar("Value")


class OnceCache(Generic[Value]):
    """A bounded, thread-safe memo: each key is computed once, even when several threads ask for it at
    the same moment (the others wait for the first); beyond `max_entries` the least recently used
    entry is dropped. A computation that raises is not kept (the next caller tries again)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.hits = self.misses = 0
        self._entries: OrderedDict[Hashable, Value] = OrderedDict()
        self._computing: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Value]) -> Value:
        with self._lock:
            if key in self._entries:
                return self._hit(key)
            key_lock = self._computing.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._entries:  # computed by the thread we waited for
                    return self._hit(key)
                self.misses += 1
            try:
                value = compute()
                with self._lock:
                    self._entries[key] = value
                    while len(self._entries) > self.max_entries:
                        self._entries.popitem(last=False)
            finally:
                with self._lock:
                    self._computing.pop(key, None)
        return value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def _hit(self, key: Hashable) -> Value:
        self.hits += 1
        self._entries.move_to_end(key)
        return self._entries[key]


class DemoRun:
    """One demo computed on one input; its chart is drawn the first time a figure asks for it."""

    def __init__(self, key: RunKey, checked: dict[str, Any], result: Any) -> None:
        self.key, self.checked, self.result = key, checked, result
        self._figure: tuple[str, bytes | None] | None = None
        self._lock = threading.Lock()

    def figure(self) -> tuple[str, bytes | None]:
        """The caption (the demo's headline numbers) and the chart as a PNG (None: no chart)."""
        with self._lock:
            if self._figure is None:
                demo = demos.DEMOS[self.key[0]]
                chart = demo.chart(self.result)
                caption = "; ".join(f"{label}: {value}" for label, value in demo.headline(self.result))
                self._figure = caption, chart_png(chart) if chart is not None else None
            return self._figure


# Every run the bank's exports can need is 49 (about 370 KB of PNG each, 18 MB in all): all fit, with room to spare.
RUN_CACHE_ENTRIES = 64
RUNS: OnceCache[DemoRun] = OnceCache(RUN_CACHE_ENTRIES)


def compute_run(runtime: Any, key: RunKey) -> DemoRun:
    """The demo computed now on the key's inputs, on one torch thread: an export is not interactive,
    so it leaves the machine's other cores to the learners (the numbers are the same either way)."""
    from kqv_demo.runtime import one_thread  # here: importing it imports torch

    demo_id, prompt, params = key
    demo = demos.DEMOS[demo_id]
    checked = demo.check(runtime, dict(params))
    with one_thread():
        return DemoRun(key, checked, demo.compute(runtime, prompt, **checked))


def demo_run(runtime: Any, key: RunKey) -> DemoRun:
    """The demo's result on the key's inputs: computed once per process and runtime, then shared."""
    return RUNS.get((runtime_token(runtime), key), lambda: compute_run(runtime, key))


def runs_to_compute(bank: Bank, items: Iterable[Item], runtime: Any, figures: bool = True) -> int:
    """How many demo runs an export of `items` would compute now (0: all cached, no model work)."""
    claim_runs, prediction_runs = runs_needed(bank, items, figures)
    keys = set(claim_runs.values()) | set(prediction_runs.values())
    return sum((runtime_token(runtime), key) not in RUNS for key in keys)


# id(runtime) -> (a weak reference to that runtime, its token); an entry leaves when its runtime is freed
_TOKENS: dict[int, tuple[weakref.ref, int]] = {}
_NEXT_TOKEN = itertools.count()
_TOKENS_LOCK = threading.Lock()


def runtime_token(runtime: Any) -> int:
    """A number for this runtime object that no other runtime ever gets. Not id() alone: once a runtime is
    freed, a new one can be given its address, and would be handed the old one's cached runs. (A runtime
    is a dataclass, so it cannot be a key of a WeakKeyDictionary: it has no hash.)"""
    with _TOKENS_LOCK:
        entry = _TOKENS.get(id(runtime))
        if entry is None or entry[0]() is not runtime:
            address = id(runtime)
            # freed before its address can be reused: the callback runs first, so it never drops a newer entry
            freed = weakref.ref(runtime, lambda _ref, address=address: _TOKENS.pop(address, None))
            entry = _TOKENS[address] = (freed, next(_NEXT_TOKEN))
        return entry[1]


PNG_PIXELS_PER_CSS_PX = 2  # figures are drawn at twice their screen size: sharp on paper
# A handout's charts are drawn with their text 1.6 times the app's size, plot sizes unchanged. Printed text
# must stay >= 7 pt, so the text sets how small a chart can be printed: larger type lets Core 10's nine
# figures take 651 mm of paper's height instead of 1,020 mm. (Up to 1.6, labels still clear each other.)
PRINT_TEXT_SCALE = 1.6
# Vega-Lite's default sizes (px) for text a demo does not size itself; every size is scaled
VEGA_LITE_TEXT_DEFAULTS = {
    "axis": {"labelFontSize": 10, "titleFontSize": 11},
    "legend": {"labelFontSize": 10, "titleFontSize": 11},
    "header": {"labelFontSize": 10, "titleFontSize": 11},
    "title": {"fontSize": 13, "subtitleFontSize": 12},
    "text": {"fontSize": 11},
}


def _is_font_size(name: str) -> bool:
    return name == "fontSize" or name.endswith("FontSize")


def with_text_scaled(spec: Any, factor: float) -> Any:
    """A Vega-Lite spec (as a dict) with every font size, set or default, multiplied by `factor`."""
    def scaled(node: Any) -> Any:
        if isinstance(node, dict):
            return {name: value * factor if _is_font_size(name) and isinstance(value, (int, float)) else scaled(value)
                    for name, value in node.items()}
        if isinstance(node, list):
            return [scaled(value) for value in node]
        return node

    spec = scaled(spec)
    config = spec.setdefault("config", {})
    for part, sizes in VEGA_LITE_TEXT_DEFAULTS.items():
        for name, size in sizes.items():
            config.setdefault(part, {}).setdefault(name, size * factor)
    return spec


def chart_png(chart: Any) -> bytes:
    """The chart as a PNG for a handout: twice the pixels, text PRINT_TEXT_SCALE times larger."""
    import vl_convert

    spec = with_text_scaled(chart.to_dict(), PRINT_TEXT_SCALE)
    return vl_convert.vegalite_to_png(spec, scale=PNG_PIXELS_PER_CSS_PX)


def _describe_inputs(prompt: str, params: dict[str, Any]) -> str:
    settings = ", ".join(f"{name} {value}" for name, value in params.items())
    return f"on “{prompt}”" + (f" ({settings})" if settings else "")


def run_live(bank: Bank, items: list[Item], runtime: Any, progress: Progress = lambda message: None,
             figures: bool = True) -> Live:
    """Run every demo the items need (once per distinct input, and once per process: see `RUNS`)
    and answer the prediction items."""
    claim_runs, prediction_runs = runs_needed(bank, items, figures)
    ordered = list(dict.fromkeys([*claim_runs.values(), *prediction_runs.values()]))
    results: dict[RunKey, Any] = {}
    live = Live(claim_figure=claim_runs, prediction_figure=prediction_runs if figures else {})
    for number, key in enumerate(ordered, start=1):
        demo_id, prompt, _params = key
        demo = demos.DEMOS[demo_id]
        progress(f"figure {number}/{len(ordered)}: {demo_id}")
        run = demo_run(runtime, key)
        results[key] = run.result
        if figures:
            caption, png = run.figure()
            live.figures[key] = Figure(number, demo_id, demo.title, caption, _describe_inputs(prompt, run.checked), png)
    for item_id, key in prediction_runs.items():
        live.answered[item_id] = answered_prediction(item_id, results[key])
    return live


def answered_prediction(item_id: str, result: Any) -> Item:
    """A prediction item with the answer the model gave and what it did as the feedback."""
    prediction = PREDICTIONS_BY_ITEM[item_id]
    checked, observed = check_observed(prediction, result, prediction.choices[0])
    return dataclasses.replace(prediction.item(), answer=observed, explanation=checked.feedback)


def with_answers(items: list[Item], live: Live | None) -> list[Item]:
    """The items, prediction items replaced by their answered form (needs `run_live` first)."""
    answered = []
    for item in items:
        if item.kind == "predict":
            if live is None or item.id not in live.answered:
                raise ValueError(f"{item.id} is answered by the live model: run the demos first (run_live)")
            observed = live.answered[item.id]  # the choices stay in the round's own (shuffled) order
            item = dataclasses.replace(item, answer=observed.answer, explanation=observed.explanation)
        answered.append(item)
    return answered

