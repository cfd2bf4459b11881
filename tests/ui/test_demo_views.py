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

