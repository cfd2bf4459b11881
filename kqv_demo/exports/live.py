"""What the real models contribute to an export, computed once at export time.

Figures: each claim's demo run on its own inputs and charted as a PNG (the same inputs give one
figure, shared by every question that uses it). Predictions: a "predict" item's right answer is
what the model does, so the demo is run and the answer read off the result, as in the app.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kqv_demo.content.loader import Bank
from kqv_demo.demos import DEMOS
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
    demo = DEMOS[demo_id]
    return demo_id, prompt or demo.default_prompt, tuple(sorted(params.items()))


def _runs_needed(bank: Bank, items: Iterable[Item], figures: bool) -> tuple[dict[str, RunKey], dict[str, RunKey]]:
    claim_runs: dict[str, RunKey] = {}
    prediction_runs: dict[str, RunKey] = {}
    for item in items:
        if item.kind == "predict":
            prediction = PREDICTIONS_BY_ITEM[item.id]
            prediction_runs[item.id] = _run_key(prediction.demo_id, prediction.prompt, prediction.params)
            continue
        claim = bank.claims.get(item.claim_id)
        if figures and claim is not None and claim.demo is not None and claim.demo.id in DEMOS:
            claim_runs.setdefault(claim.id, _run_key(claim.demo.id, claim.demo.prompt, dict(claim.demo.params)))
    return claim_runs, prediction_runs


def chart_png(chart: Any) -> bytes:
    buffer = io.BytesIO()
    chart.save(buffer, format="png", scale_factor=2)
    return buffer.getvalue()


def _describe_inputs(prompt: str, params: dict[str, Any]) -> str:
    settings = ", ".join(f"{name} {value}" for name, value in params.items())
    return f"on “{prompt}”" + (f" ({settings})" if settings else "")


def run_live(bank: Bank, items: list[Item], runtime: Any, progress: Progress = lambda message: None,
             figures: bool = True) -> Live:
    """Run every demo the items need (once per distinct input) and answer the prediction items."""
    claim_runs, prediction_runs = _runs_needed(bank, items, figures)
    ordered = list(dict.fromkeys([*claim_runs.values(), *prediction_runs.values()]))
    results: dict[RunKey, Any] = {}
    live = Live(claim_figure=claim_runs, prediction_figure=prediction_runs if figures else {})
    for number, key in enumerate(ordered, start=1):
        demo_id, prompt, params = key
        demo = DEMOS[demo_id]
        progress(f"figure {number}/{len(ordered)}: {demo_id}")
        checked = demo.check(runtime, dict(params))
        results[key] = result = demo.compute(runtime, prompt, **checked)
        if figures:
            chart = demo.chart(result)
            caption = "; ".join(f"{label}: {value}" for label, value in demo.headline(result))
            live.figures[key] = Figure(number, demo_id, demo.title, caption, _describe_inputs(prompt, checked),
                                       chart_png(chart) if chart is not None else None)
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
            item = live.answered[item.id]
        answered.append(item)
    return answered

