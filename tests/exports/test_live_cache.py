"""Export figures are computed once per process: a second export of a round reuses every figure."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from kqv_demo.content.loader import Bank
from kqv_demo.exports import model_runs_needed
from kqv_demo.exports.live import (RUN_CACHE_ENTRIES, RUNS, Live, OnceCache, run_live, runs_needed,
                                  runs_to_compute, runtime_token, with_answers)
from kqv_demo.exports import live as live_module
from kqv_demo.quiz.predict import PREDICTIONS
from kqv_demo.classroom.resolve import resolve_round
from kqv_demo.quiz.resolve import round_items


def test_a_second_export_of_the_same_round_reuses_every_figure(bank: Bank, small_round, runtime):
    _, items = small_round
    RUNS.clear()
    first = run_live(bank, items, runtime)
    computed = RUNS.misses
    assert computed == len(first.figures) > 0
    second = run_live(bank, items, runtime)
    assert RUNS.misses == computed  # nothing computed again
    assert second.figures.keys() == first.figures.keys()
    for key, figure in second.figures.items():
        assert figure.png is first.figures[key].png  # the very same bytes, not a recomputation
        assert figure == first.figures[key]


def test_another_round_shares_the_runs_but_numbers_its_own_figures(bank: Bank, small_round, runtime):
    _, items = small_round
    run_live(bank, items, runtime)  # cached
    one_item = [items[-1]]
    live = run_live(bank, one_item, runtime)
    assert [figure.number for figure in live.figures.values()] == list(range(1, len(live.figures) + 1))


def test_runs_to_compute_says_whether_an_export_needs_the_model(bank: Bank, small_round, runtime):
    _, items = small_round
    RUNS.clear()
    claim_runs, prediction_runs = runs_needed(bank, items, figures=True)
    distinct = len(set(claim_runs.values()) | set(prediction_runs.values()))
    assert runs_to_compute(bank, items, runtime) == model_runs_needed(bank, items, "html", runtime) == distinct > 0
    assert model_runs_needed(bank, [item for item in items if item.kind != "predict"], "gift", runtime) == 0
    run_live(bank, items, runtime)
    assert model_runs_needed(bank, items, "pdf", runtime) == 0


def test_the_cache_holds_every_run_that_any_export_of_the_bank_can_need(bank: Bank):
    """Exports take their demo inputs from the bank (each claim's demo, each prediction): the whole bank
    fits, so no sequence of exports makes the process compute a figure twice."""
    everything = round_items(bank, resolve_round(bank, "everything"))
    claim_runs, prediction_runs = runs_needed(bank, everything, figures=True)
    assert len(set(claim_runs.values()) | set(prediction_runs.values())) <= RUN_CACHE_ENTRIES == RUNS.max_entries


def test_once_cache_computes_a_key_once_when_many_ask_at_the_same_moment():
    cache: OnceCache[object] = OnceCache(4)
    release, calls, results = threading.Event(), [], []

    def compute() -> object:
        calls.append(1)
        release.wait()
        return object()

    threads = [threading.Thread(target=lambda: results.append(cache.get("key", compute))) for _ in range(6)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 6 and all(result is results[0] for result in results)


def test_once_cache_drops_the_least_recently_used_beyond_its_size():
    cache: OnceCache[str] = OnceCache(2)
    cache.get("a", lambda: "A")
    cache.get("b", lambda: "B")
    cache.get("a", lambda: "again")  # "a" used last
    cache.get("c", lambda: "C")
    assert "a" in cache and "c" in cache and "b" not in cache and len(cache) == 2


def test_once_cache_keeps_no_failure():
    cache: OnceCache[str] = OnceCache(2)

    def fail() -> str:
        raise RuntimeError("the model is busy")

    with pytest.raises(RuntimeError):
        cache.get("a", fail)
    assert "a" not in cache and cache.get("a", lambda: "A") == "A"


def test_a_new_runtime_at_a_freed_runtime_s_address_gets_its_own_runs():
    """Cached runs belong to one runtime object: a runtime created where a freed one lived (CPython reuses
    the address, so the same id()) must not be handed the old one's results."""

    class Runtime:  # stands in for kqv_demo.runtime.Runtime: only identity matters here
        pass

    for _ in range(100):  # until CPython gives the new object the freed one's address
        old = Runtime()
        old_address, old_token = id(old), runtime_token(old)
        del old
        new = Runtime()
        if id(new) == old_address:
            break
    else:
        pytest.skip("this interpreter did not reuse the address")
    assert runtime_token(new) != old_token
    assert runtime_token(new) == runtime_token(new)  # stable for the same object
    address = id(new)
    del new
    assert address not in live_module._TOKENS  # a freed runtime's entry does not linger


def test_answered_predictions_keep_the_round_s_order_of_choices():
    """The model's answer is filled in; the choices stay as the learner's round shuffled them, so a handout
    prints them in the same order as the page (not with the taught answer first)."""
    prediction = PREDICTIONS[0]
    shuffled_item = next(prediction.item(seed) for seed in range(50)
                         if prediction.item(seed).choices != prediction.choices)
    live = Live()
    live.answered[prediction.item_id] = dataclasses.replace(  # as answered_prediction builds it
        prediction.item(), choices=prediction.choices, answer=prediction.choices[0],
        explanation="The model kept every layer.")
    (answered,) = with_answers([shuffled_item], live)
    assert answered.choices == shuffled_item.choices
    assert (answered.answer, answered.explanation) == (prediction.choices[0], "The model kept every layer.")


def test_a_handout_chart_scales_every_font_size_set_or_default():
    """Printed charts use larger type so they can be printed smaller with text >= 7 pt (issue #14, 4)."""
    import altair as alt
    import pandas as pd

    from kqv_demo.exports.live import VEGA_LITE_TEXT_DEFAULTS, with_text_scaled

    chart = alt.Chart(pd.DataFrame({"x": [1, 2]}), title=alt.Title("t", fontSize=12)).mark_bar().encode(
        x=alt.X("x:Q", axis=alt.Axis(labelFontSize=11)))
    spec = with_text_scaled(chart.to_dict(), 1.5)
    assert spec["title"]["fontSize"] == 18 and spec["encoding"]["x"]["axis"]["labelFontSize"] == 16.5
    for part, sizes in VEGA_LITE_TEXT_DEFAULTS.items():
        for name, size in sizes.items():
            assert spec["config"][part][name] == size * 1.5, (part, name)
    assert chart.to_dict()["title"]["fontSize"] == 12  # the app's chart is not changed
