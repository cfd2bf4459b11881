"""A small real round, its items, and its live figures (computed once on the real models)."""

from __future__ import annotations

import pytest

from kqv_demo.content.loader import Bank, load_bank
from kqv_demo.exports.live import Live, run_live
from kqv_demo.quiz.items import Item
from kqv_demo.classroom.resolve import resolve_round
from kqv_demo.quiz.resolve import round_items
from kqv_demo.quiz.rounds import RoundSpec

SMALL_ROUND = "kl-and-dot-products"


@pytest.fixture(scope="session")
def bank() -> Bank:
    return load_bank(dialogue=False)


@pytest.fixture(scope="session")
def small_round(bank: Bank) -> tuple[RoundSpec, list[Item]]:
    spec = resolve_round(bank, SMALL_ROUND)
    return spec, round_items(bank, spec)


@pytest.fixture(scope="session")
def everything(bank: Bank) -> tuple[RoundSpec, list[Item]]:
    """Every non-prediction item in the bank: exercises every text the bank has."""
    spec = resolve_round(bank, "everything")
    return spec, [item for item in round_items(bank, spec) if item.kind != "predict"]


@pytest.fixture(scope="session")
def small_live(bank: Bank, small_round, runtime) -> Live:
    _, items = small_round
    return run_live(bank, items, runtime)


@pytest.fixture(scope="session")
def prediction_round(bank: Bank) -> tuple[RoundSpec, list[Item]]:
    """Two prediction items plus two ordinary ones, so exports mix both."""
    spec = RoundSpec(id="predict-mix", title="Predict: mix", count=4, kinds=("predict", "verdict"),
                     claims=("softmax-turns-scores-into-attention-distribution",
                             "number-of-layers-is-decided-dynamically"))
    items = round_items(bank, spec)
    assert sorted(item.kind for item in items) == ["predict", "predict", "verdict", "verdict"]
    return spec, items


@pytest.fixture(scope="session")
def prediction_live(bank: Bank, prediction_round, runtime) -> Live:
    _, items = prediction_round
    return run_live(bank, items, runtime, figures=False)
