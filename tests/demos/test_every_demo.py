"""Every demo runs from the CLI with its defaults, renders a chart, and rejects bad parameters."""

from __future__ import annotations

import json

import pytest

from kqv_demo.cli import main
from kqv_demo.demos import DEMOS
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime


@pytest.mark.parametrize("demo_id", list(DEMOS))
def test_runs_from_the_cli_with_defaults(runtime: Runtime, demo_id: str, capsys, tmp_path):
    png = tmp_path / f"{demo_id}.png"
    assert main(["demo", demo_id, "--json", "--png", str(png)]) == 0
    output = json.loads(capsys.readouterr().out)
    assert output["id"] == demo_id and output["explanation"] and output["headline"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("demo_id", list(DEMOS))
def test_unknown_parameters_are_refused_with_a_message(runtime: Runtime, demo_id: str):
    with pytest.raises(UserInputError, match="has no parameter"):
        DEMOS[demo_id].run(runtime, no_such_parameter=1)


def test_demo_list_names_the_claims_each_demo_supports(capsys):
    assert main(["demo", "--list", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(DEMOS)
    assert "kl-divergence-compares-queries-and-keys" in rows["dot-product-not-kl"]["claims"]
    assert all(row["claims"] for row in rows.values()), "every demo supports at least one claim"


def _font_sizes(node: object) -> list[float]:
    if isinstance(node, dict):
        return [size for name, value in node.items() for size in (
            [value] if (name == "fontSize" or name.endswith("FontSize")) and isinstance(value, (int, float))
            else _font_sizes(value))]
    if isinstance(node, list):
        return [size for value in node for size in _font_sizes(value)]
    return []


@pytest.mark.parametrize("demo_id", list(DEMOS))
def test_no_chart_text_is_smaller_than_printing_assumes(runtime: Runtime, demo_id: str):
    """The PDF handout sizes each figure so that its smallest text, SMALLEST_CHART_TEXT_PX, prints at 7 pt:
    a demo that set a smaller font would print below 7 pt."""
    from kqv_demo.exports.live import PRINT_TEXT_SCALE
    from kqv_demo.exports.pdf_handout import SMALLEST_CHART_TEXT_PX

    demo = DEMOS[demo_id]
    chart = demo.chart(demo.run(runtime))
    sizes = _font_sizes(chart.to_dict()) if chart is not None else []
    assert min(sizes, default=SMALLEST_CHART_TEXT_PX) * PRINT_TEXT_SCALE >= SMALLEST_CHART_TEXT_PX
