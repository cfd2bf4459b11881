"""How many metrics or widgets share a row: none of their labels or values may be cut."""

from __future__ import annotations

import pytest

from kqv_demo.ui.demo_views import per_row


def test_short_labels_and_values_fit_four_in_a_row():
    assert per_row(4, ["Layer", "Head", "Tokens", "Scale"], ["3", "7", "12", "0.125"]) == 4
    assert per_row(2, ["Layer", "Head"]) == 2, "never more columns than items"


@pytest.mark.parametrize(("label", "expected"), [("x" * 24, 4), ("x" * 25, 3), ("x" * 34, 3), ("x" * 35, 2)])
def test_a_long_label_takes_fewer_columns(label: str, expected: int):
    assert per_row(4, ["Layer", label]) == expected


def test_a_long_value_takes_fewer_columns():
    assert per_row(4, ["P"], ["0.3413 → 0.3413"]) == 2
    assert per_row(4, ["P"], ["45 positions"]) == 3

