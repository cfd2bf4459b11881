"""Every page checked by axe-core in Debian's Chromium (issue #14): no serious or critical violation.

axe-core's own script (`axe.min.js`, shipped by the PyPI package axe-playwright-python) is injected into
the page after the app is idle; the rules are axe's defaults (WCAG 2.x A and AA, and best practices).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.conftest import wait_for_the_app

pytestmark = pytest.mark.browser

PAGES = {"home": "", "quiz": "quiz", "ask": "ask", "demo-lab": "demo-lab", "claims": "claims",
         "instructor": "instructor", "about": "about"}


def _axe_script() -> str:
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now: rule, count and first element."""
    page.add_script_tag(content=_axe_script())
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}, {len(v['nodes'])}×): {v['nodes'][0]['html'][:120]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.fixture(scope="module")
def page(browser):
    return browser.new_page(viewport={"width": 1300, "height": 1800})


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_has_no_serious_accessibility_violation(page, server_url: str, name: str):
    page.goto(f"{server_url}/{PAGES[name]}")
    wait_for_the_app(page)
    assert serious_violations(page) == []


def test_a_quiz_question_and_its_feedback_have_no_serious_violation(page, server_url: str):
    page.goto(f"{server_url}/quiz")
    wait_for_the_app(page)
    page.get_by_role("textbox", name="Your name or a nickname").fill("Axe learner")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Start a round", timeout=60_000)
    page.locator('[data-testid="stButton"] button', has_text="Start").first.click()
    page.wait_for_selector("text=How sure are you?", timeout=60_000)
    wait_for_the_app(page)
    assert serious_violations(page) == [], "the question"
    page.get_by_role("radiogroup").first.get_by_role("radio").first.check(force=True)
    page.get_by_role("radiogroup").nth(1).get_by_role("radio").nth(1).check(force=True)
    page.get_by_role("button", name="Check my answer").click()
    page.wait_for_selector("text=The claim behind this question", timeout=60_000)
    wait_for_the_app(page)
    assert serious_violations(page) == [], "the feedback"
