"""The Streamlit view of any demo: its inputs, the live computation, metrics, chart and words."""

from __future__ import annotations

import math

from typing import Any

import streamlit as st

import altair as alt
import pandas as pd

from kqv_demo import settings
from kqv_demo.demos.base import Demo, Param
from kqv_demo.markup import plain
from kqv_demo.runtime import Runtime
from kqv_demo.ui.resources import charge


MAX_TABLE_ROWS = 2000  # a 256-token heatmap has 65,536 cells: the first rows, and say so


def show_chart(chart: alt.TopLevelMixin, description: str | None = None) -> None:
    """Draw at the size the chart asks for: Streamlit would otherwise squeeze a single chart's
    legend, title and axis labels into its height, leaving a sliver of plot. `description` (what the
    chart shows, with its headline numbers) is the chart's accessible name; its data follows as tables,
    for a screen reader or anyone who prefers numbers."""
    if description:
        chart = chart.properties(description=description)
    st.altair_chart(chart.properties(autosize=alt.AutoSizeParams(type="pad")), width="content")
    tables = chart_tables(chart)
    if tables:
        with st.expander("The numbers behind this chart"):
            for table in tables:
                if len(table) > MAX_TABLE_ROWS:
                    st.caption(f"The first {MAX_TABLE_ROWS:,} of {len(table):,} rows.")
                st.dataframe(table.head(MAX_TABLE_ROWS), hide_index=True)


def chart_tables(chart: alt.TopLevelMixin) -> list[pd.DataFrame]:
    """The data frames a chart draws (its own and its layers' and panels'), each once."""
    found: list[pd.DataFrame] = []

    def visit(part: object) -> None:
        data = getattr(part, "data", None)
        if isinstance(data, pd.DataFrame) and not any(data is seen for seen in found):
            found.append(data)
        for name in ("layer", "hconcat", "vconcat", "concat"):
            for child in getattr(part, name, None) or ():
                visit(child)
        spec = getattr(part, "spec", None)  # a faceted or repeated chart
        if spec is not None and not isinstance(spec, (str, dict)):
            visit(spec)

    visit(chart)
    return found


def chart_description(demo: Demo, result: Any) -> str:
    """What a demo's chart shows, in words: its title and the run's headline numbers (plain text)."""
    numbers = "; ".join(f"{label}: {plain(value)}" for label, value in demo.headline(result))
    return f"Chart: {demo.title}." + (f" {numbers}." if numbers else "")


@st.cache_resource(max_entries=64, show_spinner=False)
def cached_result(
    _runtime: Runtime, _demo: Demo, demo_id: str, prompt: str, params: tuple, _rate_limited: bool = False
) -> Any:
    """Results are small dataclasses; the same inputs are never computed twice per process. A run on
    the learner's own inputs (`_rate_limited`) spends one of the session's demo runs, raising
    ratelimit.RateLimited when they are spent; a result already computed costs nothing."""
    if _rate_limited:
        charge("demo")
    return _demo.compute(_runtime, prompt, **dict(params))


def _from_link(param: Param, demo: Demo, models: Runtime) -> Any:
    """The parameter's value from the page link (?layer=4...), if valid, else its default."""
    raw = st.query_params.get(param.name)
    if raw is None:
        return param.default
    try:
        return demo.check(models, {param.name: raw})[param.name]
    except Exception:  # a bad link value falls back to the default; the page still works
        return param.default


def _widget(param: Param, demo: Demo, models: Runtime, column: Any) -> Any:
    label = param.label or param.name
    value = _from_link(param, demo, models)
    key = f"{demo.id}.{param.name}"
    low, high = demo.bounds(param, models)
    if param.kind == "layer":
        return column.slider(label, int(low), int(high), int(value), key=key, help=param.help or None)
    if param.kind == "head":
        options = list(range(int(low), int(high) + 1))
        return column.selectbox(label, options, index=options.index(int(value)), key=key, help=param.help or None)
    if param.kind == "bool":
        return column.toggle(label, value=bool(value), key=key, help=param.help or None)
    if param.kind == "int":
        return column.number_input(label, int(low), int(high), int(value), step=1, key=key, help=param.help or None)
    if param.kind == "float":
        return column.slider(label, float(low), float(high), float(value), key=key, help=param.help or None)
    return column.text_input(label, str(value), max_chars=500, key=key, help=param.help or None)


def demo_view(demo: Demo, models: Runtime) -> None:
    prompt = demo.default_prompt
    if demo.prompt_label:
        prompt = st.text_area(
            demo.prompt_label,
            value=st.query_params.get("prompt", demo.default_prompt),
            max_chars=4000,
            key=f"{demo.id}.prompt",
            help=f"Up to {settings.MAX_PROMPT_TOKENS} tokens are used; longer text is cut, with a notice.",
        )
    params = {}
    if demo.params:
        columns = st.columns(per_row(len(demo.params), [param.label or param.name for param in demo.params]))
        for index, param in enumerate(demo.params):
            params[param.name] = _widget(param, demo, models, columns[index % len(columns)])
    checked = demo.check(models, params)

    with st.spinner("Running the model on your input…"):
        result = cached_result(models, demo, demo.id, prompt, tuple(sorted(checked.items())), _rate_limited=True)
    truncation = getattr(result, "truncation", None)
    if truncation:
        st.warning(truncation)
    show_headline(demo.headline(result))
    if demo.status:
        passed, text = demo.status(result)
        (st.success if passed else st.error)(text)
    chart = demo.chart(result)
    if chart is not None:
        show_chart(chart, chart_description(demo, result))
    st.markdown(demo.explain(result))
    if demo.details:
        with st.expander("The formula and the code"):
            st.markdown(demo.details(result))


def per_row(count: int, labels: list[str], values: list[str] = ()) -> int:
    """How many widgets or metrics side by side, so that no label or value is cut ("0.3413 → 0.…"):
    four in a row fit about 28 characters of label and 10 of value each. Rows are balanced (2 + 2,
    not 3 + 1)."""
    longest_label = max((len(label) for label in labels), default=0)
    longest_value = max((len(value) for value in values), default=0)
    by_label = 4 if longest_label <= 28 else 3 if longest_label <= 40 else 2
    by_value = 4 if longest_value <= 10 else 3 if longest_value <= 14 else 2
    widest = max(1, min(count, by_label, by_value))
    rows = math.ceil(count / widest)
    return math.ceil(count / rows)


def show_headline(headline: list[tuple[str, str]]) -> None:
    """The demo's key numbers as metrics, fewer per row when the labels or values are long."""
    if not headline:
        return
    columns_per_row = per_row(len(headline), [label for label, _ in headline], [value for _, value in headline])
    for start in range(0, len(headline), columns_per_row):
        for column, (label, value) in zip(st.columns(columns_per_row), headline[start : start + columns_per_row]):
            column.metric(label, value)


def demo_result(demo: Demo, models: Runtime, prompt: str | None, params: dict[str, Any]) -> Any:
    """A demo's result on fixed inputs (computed once per process for the same inputs)."""
    checked = demo.check(models, params)
    with st.spinner(f"Running “{demo.title}” on the real model…"):
        return cached_result(models, demo, demo.id, prompt or demo.default_prompt, tuple(sorted(checked.items())))


def demo_inline(demo: Demo, models: Runtime, prompt: str | None, params: dict[str, Any]) -> None:
    """A demo's result on fixed inputs, without widgets: for quiz feedback and the chat."""
    result = demo_result(demo, models, prompt, params)
    show_headline(demo.headline(result))
    chart = demo.chart(result)
    if chart is not None:
        show_chart(chart, chart_description(demo, result))
    st.markdown(demo.explain(result))
