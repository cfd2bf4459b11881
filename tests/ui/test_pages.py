"""Every page, driven through Streamlit's AppTest (no browser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kqv_demo.runtime import Runtime
from kqv_demo.ui.navigation import PAGES
from tests.hostile import as_read

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def app(**query: str) -> AppTest:
    test = AppTest.from_file(APP, default_timeout=180)
    for key, value in query.items():
        test.query_params[key] = value
    return test


def open_page(page: str, **query: str) -> AppTest:
    test = app(**query).run()
    test.switch_page(PAGES[page].path).run()
    assert not test.exception, test.exception
    # errors the page caught itself are shown, not raised: test.exception does not list them
    caught = [error.value for error in test.error if "it is our fault" in error.value]
    assert not caught, caught
    return test


@pytest.mark.parametrize("page", ["home", "quiz", "ask", "claims", "instructor", "about"])
def test_every_page_renders_without_an_exception(runtime: Runtime, page: str, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'pages.sqlite3'}")
    test = open_page(page)
    assert test.title[0].value


def test_ask_page_is_a_chat_with_examples(runtime: Runtime):
    test = open_page("ask")
    assert "Not built yet" not in " ".join(info.value for info in test.info)
    assert test.chat_input and any("KL divergence" in button.label for button in test.button)


def test_instructor_page_offers_new_round_results_and_export(runtime: Runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'pages.sqlite3'}")
    test = open_page("instructor")
    assert [tab.label for tab in test.tabs] == ["New round", "Class results", "Export"]
    assert "Not built yet" not in " ".join(info.value for info in test.info)


def test_demo_lab_recomputes_attention_and_matches_the_model(runtime: Runtime):
    test = open_page("demo_lab")
    metrics = {metric.label: metric.value for metric in test.metric}
    assert float(metrics["Max |by hand − model|"]) <= 1e-5
    assert metrics["Largest weight above the diagonal"] == "0"
    assert "reproduces the model's attention weights" in test.success[0].value
    (chart,) = test.get("arrow_vega_lite_chart") or test.get("vega_lite_chart")
    # issue #14: the chart's accessible name gives its numbers, and its data is there as tables
    assert json.loads(chart.proto.spec)["description"].startswith("Chart: ")
    assert "Max |by hand − model|" in json.loads(chart.proto.spec)["description"]
    assert any(e.label == "The numbers behind this chart" for e in test.expander)


def test_demo_lab_follows_the_learner_inputs(runtime: Runtime):
    test = open_page("demo_lab")
    test.text_area[0].set_value("Queries and keys meet in a dot product.").run()
    test.slider[0].set_value(12).run()
    test.selectbox[1].set_value(7).run()
    assert not test.exception
    assert "key/value head 2" in " ".join(m.value for m in test.markdown)
    assert float(test.metric[0].value) <= 1e-5
    test.toggle[0].set_value(False).run()
    assert "no longer matches" in test.error[0].value
    assert "√64 = 8 times" in " ".join(m.value for m in test.markdown)


def test_demo_lab_reads_shared_links_and_survives_bad_ones(runtime: Runtime):
    test = open_page("demo_lab", prompt="The river bank was muddy.", layer="9", head="5")
    assert test.text_area[0].value == "The river bank was muddy."
    assert test.slider[0].value == 9 and test.selectbox[1].value == 5
    bad = open_page("demo_lab", demo="nope", layer="banana", head="99")
    assert "no demo called 'nope'" in as_read(bad.warning[0].value)
    assert bad.slider[0].value == 0 and bad.selectbox[1].value == 0


def test_demo_lab_empty_and_overlong_prompts(runtime: Runtime):
    test = open_page("demo_lab")
    test.text_area[0].set_value("   ").run()
    assert "empty" in test.error[0].value
    test.text_area[0].set_value("token " * 600).run()
    assert not test.exception
    assert "the demos use the first 256" in test.warning[0].value


def test_every_page_script_is_in_the_one_page_registry_and_opens_by_its_entry():
    from kqv_demo.ui.navigation import FOLDER

    scripts = {path.stem for path in (Path(APP).parent / FOLDER).glob("*.py") if path.stem != "__init__"}
    assert scripts == set(PAGES)
    test = app().run()
    assert not test.exception
    test.switch_page(PAGES["about"].path).run()  # a page reached by its registry entry renders
    assert not test.exception and test.title[0].value
