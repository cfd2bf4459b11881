"""Shared chart helpers: attention maps show masked cells in grey and fit the page in pairs."""

from __future__ import annotations

import re

import altair as alt
import numpy as np
import pytest
import vl_convert

from kqv_demo.demos import charts


def _width(chart: alt.TopLevelMixin) -> float:
    """The chart's width in px as the app draws it (autosize "pad")."""
    svg = vl_convert.vegalite_to_svg(chart.properties(autosize=alt.AutoSizeParams(type="pad")).to_json())
    return float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1))


def _causal(n_tokens: int) -> np.ndarray:
    weights = np.tril(np.ones((n_tokens, n_tokens)))
    return weights / weights.sum(axis=1, keepdims=True)


def test_exact_zeros_are_drawn_grey_and_only_they():
    chart = charts.attention_heatmap(_causal(4), ["a", "b", "c", "d"], "t", 220).to_dict()
    zero, weighted = chart["layer"]
    assert zero["mark"]["color"] == charts.MASKED_GREY and zero["transform"] == [{"filter": "datum.weight == 0"}]
    assert weighted["transform"] == [{"filter": "datum.weight != 0"}]
    assert weighted["encoding"]["color"]["scale"]["domain"] == [0, 1]


@pytest.mark.parametrize("n_tokens", [5, 9, 11, 12, 17, 32])
def test_a_pair_of_maps_fits_the_page(n_tokens: int):
    tokens = [f"tok{i}" for i in range(n_tokens)]
    size = charts.attention_map_size(n_tokens)
    pair = charts.attention_pair(
        charts.attention_heatmap(_causal(n_tokens), tokens, "left", size),
        charts.attention_heatmap(_causal(n_tokens), tokens, "right", size),
        size,
    )
    assert _width(pair) <= 800
    assert ("hconcat" in pair.to_dict()) == (size <= charts.PAIR_SIDE_BY_SIDE_MAX)


def test_a_long_prompt_s_map_shows_its_first_positions_and_says_so():
    """Issue #14, 12: a 256-token map drew 65,536 cells under 2 px (a solid triangle), in about 15 s."""
    tokens = [f"tok{i}" for i in range(256)]
    chart = charts.attention_heatmap(_causal(256), tokens, "Model", charts.attention_map_size(256)).to_dict()
    data = chart["datasets"][next(iter(chart["datasets"]))]
    assert len(data) == charts.MAP_TOKENS ** 2
    assert chart["layer"][0]["title"] == f"Model (first {charts.MAP_TOKENS} of 256 tokens)"
    assert chart["layer"][0]["encoding"]["y"]["axis"]["labelOverlap"] == "greedy"  # thinned, not piled up
    short = charts.attention_heatmap(_causal(5), tokens[:5], "Model", 220).to_dict()
    assert short["layer"][0]["title"] == "Model" and short["layer"][0]["encoding"]["y"]["axis"]["labelOverlap"] is False


def test_an_error_about_a_long_prompt_quotes_it_shortly():
    from kqv_demo.demos.base import MESSAGE_TEXT_CHARS, MESSAGE_TOKENS, quoted_for_message

    quoted, shown = quoted_for_message("The cat sat. " * 100, ["The", " cat", " sat", "."] * 64)
    assert len(quoted) <= MESSAGE_TEXT_CHARS + 2 and quoted.endswith("…'")
    assert shown.count("|") == MESSAGE_TOKENS and shown.endswith("(256 tokens in all)")
