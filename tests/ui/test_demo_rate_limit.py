"""The Demo lab's per-session rate limit: runs on new inputs past the burst are refused with the wait,
the learner's prompt stays in its box, and a result already computed is shown without spending a run."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from kqv_demo.ratelimit import DEMO
from kqv_demo.runtime import Runtime
from kqv_demo.ui.navigation import PAGES

APP = str(Path(__file__).resolve().parents[2] / "app.py")
DEMO_ID = "attention-by-hand"  # one short SmolLM2 pass per prompt


def _lab() -> AppTest:
    test = AppTest.from_file(APP, default_timeout=240)
    test.query_params["demo"] = DEMO_ID
    test.run()
    test.switch_page(PAGES["demo_lab"].path).run()
    assert not test.exception, test.exception
    return test


def _prompt(test: AppTest, text: str) -> None:
    test.text_area(key=f"{DEMO_ID}.prompt").set_value(text).run()
    assert not test.exception, test.exception


def _refused(test: AppTest) -> bool:
    return any(error.value.startswith("You are starting demo runs faster than I can compute them; wait ")
               for error in test.error)


def test_demo_runs_past_the_burst_are_refused_and_the_prompt_is_kept(runtime: Runtime):
    lab = _lab()  # the default prompt: one run spent (unless another test computed it already)
    for number in range(DEMO.burst):
        _prompt(lab, f"The cat sat on mat number {number}.")
        if _refused(lab):
            break
    assert _refused(lab), [error.value for error in lab.error]
    assert lab.text_area(key=f"{DEMO_ID}.prompt").value.startswith("The cat sat on mat number")

    _prompt(lab, "The cat sat on mat number 0.")  # computed before: shared, costs nothing
    assert not _refused(lab)

    other = _lab()  # another visitor's session has its own bucket
    _prompt(other, "A different visitor types a sentence.")
    assert not _refused(other)
