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
