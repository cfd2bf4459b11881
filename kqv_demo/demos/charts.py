"""Small chart helpers shared by the demos: colour-blind-safe colours, token axes, simple bars and lines."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

# Okabe & Ito (2008), a palette that stays distinct under the common colour-vision deficiencies.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


MASKED_GREY = "#d9d9d9"
# Two attention maps side by side fit the page's ~800 px up to this many pixels each (axes and legend included).
PAIR_SIDE_BY_SIDE_MAX = 270
SIDE_BY_SIDE_LABEL_PX = 16  # a token label on the query axis needs about this much height
LABEL_CHAR_PX = 7  # width of one character of an axis label (10 px sans-serif), with room to spare


def palette(n: int) -> alt.Scale:
    return alt.Scale(range=OKABE_ITO[:n])


def grouped_bars(data: pd.DataFrame, x: str, y: str, group: str, title: str, x_order: list[str] | None = None,
                 y_title: str | None = None, width: int = 560) -> alt.Chart:
    """Bars of `y` for each `x`, one colour (and offset) per `group`."""
    groups = list(dict.fromkeys(data[group]))
    return (
        alt.Chart(data, title=title)
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:N", sort=x_order, title=x, axis=alt.Axis(labelAngle=-45, labelOverlap=False)),
            xOffset=alt.XOffset(f"{group}:N", sort=groups),
            y=alt.Y(f"{y}:Q", title=y_title or y),
            color=alt.Color(f"{group}:N", sort=groups, scale=palette(len(groups)), title=None,
                            legend=alt.Legend(orient="top", labelLimit=0)),
            tooltip=[x, group, alt.Tooltip(f"{y}:Q", format=".4f")],
        )
        .properties(width=width, height=260)
    )


def lines(data: pd.DataFrame, x: str, y: str, group: str, title: str, y_title: str | None = None,
          x_title: str | None = None, width: int = 560) -> alt.Chart:
    groups = list(dict.fromkeys(data[group]))
    return (
        alt.Chart(data, title=title)
        .mark_line(point=True)
        .encode(
            x=alt.X(f"{x}:Q", title=x_title or x),
            y=alt.Y(f"{y}:Q", title=y_title or y),
            color=alt.Color(f"{group}:N", sort=groups, scale=palette(len(groups)), title=None,
                            legend=alt.Legend(orient="top", labelLimit=0)),
            tooltip=[x, group, alt.Tooltip(f"{y}:Q", format=".4f")],
        )
        .properties(width=width, height=260)
    )

# A 256-token attention map is 65,536 cells; Altair's default cap of 5,000 rows would refuse it.
alt.data_transformers.disable_max_rows()


def label_overlap(span_px: float, n_labels: int, label_px: float) -> bool | str:
    """Vega's labelOverlap: every label when they fit (`label_px` each), else thinned ("greedy"), never piled up."""
    return False if span_px >= label_px * n_labels else "greedy"


def attention_map_size(n_tokens: int) -> int:
    """Side of one query-by-key map in px: about 24 px per token, between 220 and 440."""
    return max(220, min(440, 24 * n_tokens))


# A map draws at most this many positions: the first ones, a complete square under a causal mask. A
# 256-token map had 65,536 cells of under 2 px (a solid triangle) and took about 15 s to draw in the browser;
# 48 positions keep cells about 9 px wide. The demo's numbers still cover every position.
MAP_TOKENS = 48


def shown_square(matrix: np.ndarray, tokens: list[str], title: str) -> tuple[np.ndarray, list[str], str]:
    """The top-left MAP_TOKENS square of a query-by-key matrix, with a title that says so when it is cut."""
    shown = min(len(tokens), MAP_TOKENS)
    if shown == len(tokens):
        return matrix, tokens, title
    return matrix[:shown, :shown], tokens[:shown], f"{title} (first {shown} of {len(tokens)} tokens)"


def token_axis(size: int, n_tokens: int) -> alt.Axis:
    """Every token label when they fit, thinned when they do not (never piled on each other)."""
    return alt.Axis(labelOverlap=label_overlap(size, n_tokens, 12))


def attention_heatmap(weights: np.ndarray, tokens: list[str], title: str, size: int) -> alt.LayerChart:
    """Query-by-key attention weights (viridis, 0 to 1) with the tokens on both axes; cells that are
    exactly 0 are grey, so a causal mask can be told from weights that are merely small."""
    weights, tokens, title = shown_square(weights, tokens, title)
    rows, cols = np.indices(weights.shape)
    data = pd.DataFrame({
        "query token": [tokens[i] for i in rows.ravel()],
        "key token": [tokens[j] for j in cols.ravel()],
        "weight": weights.ravel(),
    })
    base = alt.Chart(data, title=title).encode(
        x=alt.X("key token:N", sort=tokens, title="key (attended-to token)", axis=token_axis(size, len(tokens))),
        y=alt.Y("query token:N", sort=tokens, title="query (attending token)", axis=token_axis(size, len(tokens))),
        tooltip=["query token", "key token", alt.Tooltip("weight:Q", format=".6f")],
    )
    weighted = base.transform_filter("datum.weight != 0").mark_rect().encode(
        color=alt.Color("weight:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1]), title="weight"),
    )
    zero = base.transform_filter("datum.weight == 0").mark_rect(color=MASKED_GREY)
    return (zero + weighted).properties(width=size, height=size)


def attention_pair(left: alt.LayerChart, right: alt.LayerChart, size: int) -> alt.HConcatChart | alt.VConcatChart:
    """Two attention maps with one colour scale: side by side when they fit the page, else one above the other."""
    pair = alt.hconcat(left, right) if size <= PAIR_SIDE_BY_SIDE_MAX else alt.vconcat(left, right)
    return pair.resolve_scale(color="shared")


def pair_size(n_tokens: int, longest_label: int) -> int | None:
    """Side of each of two maps side by side within the page's ~800 px: each map also needs its query
    labels (`longest_label` characters, LABEL_CHAR_PX each) and axis title, and the legend ~60 px.
    None when that leaves less than SIDE_BY_SIDE_LABEL_PX per token: then the maps go one above the
    other, at the usual size."""
    room = (800 - 60) // 2 - 30 - LABEL_CHAR_PX * longest_label
    size = min(attention_map_size(n_tokens), PAIR_SIDE_BY_SIDE_MAX, room)
    return size if size >= SIDE_BY_SIDE_LABEL_PX * n_tokens else None
