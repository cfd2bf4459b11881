"""How many metrics or widgets share a row: none of their labels or values may be cut."""

from __future__ import annotations

import pytest

from kqv_demo.ui.demo_views import per_row


def test_short_labels_and_values_fit_four_in_a_row():
    assert per_row(4, ["Layer", "Head", "Tokens", "Scale"], ["3", "7", "12", "0.125"]) == 4
    assert per_row(2, ["Layer", "Head"]) == 2, "never more columns than items"


@pytest.mark.parametrize(("label", "expected"), [("x" * 28, 4), ("x" * 29, 3), ("x" * 40, 3), ("x" * 41, 2)])
def test_a_long_label_takes_fewer_columns(label: str, expected: int):
    assert per_row(3, ["Layer", "Head", label]) == min(3, expected)
    assert per_row(6, ["Layer", label]) == {4: 3, 3: 3, 2: 2}[expected], "six in rows of 3 + 3 or 2 + 2 + 2"


@pytest.mark.parametrize(("count", "widest", "expected"), [(4, 3, 2), (5, 4, 3), (7, 3, 3), (4, 4, 4), (3, 2, 2)])
def test_rows_are_balanced(count: int, widest: int, expected: int):
    label = {4: "x", 3: "x" * 30, 2: "x" * 50}[widest]
    assert per_row(count, [label]) == expected


def test_a_long_value_takes_fewer_columns():
    assert per_row(4, ["P"], ["0.3413 → 0.3413"]) == 2
    assert per_row(3, ["P"], ["45 positions"]) == 3
    assert per_row(4, ["P"], ["45 positions"]) == 2, "2 + 2 rather than 3 + 1"



def test_a_chart_s_numbers_are_found_in_its_layers_and_panels_each_once():
    import altair as alt
    import pandas as pd

    from kqv_demo.ui.demo_views import chart_tables

    weights = pd.DataFrame({"token": ["The", "cat"], "weight": [0.25, 0.75]})
    scores = pd.DataFrame({"token": ["The", "cat"], "score": [-1.0, 2.0]})
    bars = alt.Chart(weights).mark_bar().encode(x="token", y="weight")
    labels = alt.Chart(weights).mark_text().encode(x="token", y="weight", text="weight")
    chart = alt.vconcat(bars + labels, alt.Chart(scores).mark_point().encode(x="token", y="score"))
    tables = chart_tables(chart)
    assert len(tables) == 2 and tables[0] is weights and tables[1] is scores


def test_a_demo_chart_is_described_by_its_title_and_headline_numbers():
    from kqv_demo.markup import literal
    from kqv_demo.ui.demo_views import chart_description

    class Fake:  # only what chart_description reads
        title = "Attention by hand"

        @staticmethod
        def headline(result):
            return [("Largest difference", "3.1e-07"), ("Token", literal("*cat*"))]

    described = chart_description(Fake, None)  # type: ignore[arg-type]
    assert described == "Chart: Attention by hand. Largest difference: 3.1e-07; Token: *cat*."  # plain text
