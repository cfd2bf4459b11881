"""Style rules the whole app shares, sent once per page run (Streamlit has no stylesheet setting)."""

from __future__ import annotations

import streamlit as st

# A demo's chart has a fixed size in CSS pixels (a heatmap's cells, a logit lens' 30 layers side by side),
# up to about 830 px wide. On a 390 px phone it was cut at the screen's edge, hiding its last layers. A
# chart wider than its column is now shrunk to the column's width, keeping its proportions: all of it
# shows, and pinch-zoom or "The numbers behind this chart" give the detail. Streamlit draws charts as SVG
# with a viewBox (canvas beyond 2,000 data points), so a shrunk chart keeps its tooltips. Charts that fit
# are not touched.
CHARTS_FIT_THE_COLUMN = """
div.stVegaLiteChart.vega-embed { max-width: 100% !important; }
div.stVegaLiteChart.vega-embed > svg,
div.stVegaLiteChart.vega-embed > canvas { max-width: 100% !important; height: auto !important; }
"""


def apply_page_style() -> None:
    st.html(f"<style>{CHARTS_FIT_THE_COLUMN}</style>")
