"""M4 in the real browser: hostile links and inputs render no anchor or image pointing to the payload
hosts, no icon and no Streamlit logo from them, and no link to a host the bank does not cite. This is
the check that counts: Streamlit's renderer links bare URLs *after* resolving backslash escapes."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, urlencode, urlparse

import pytest

from kqv_demo import classroom
from kqv_demo.claim_source import addresses
from kqv_demo.content.loader import load_bank
from kqv_demo.quiz.rounds import RoundSpec
from kqv_demo.storage import Store
from tests.hostile import HOSTILE, PAYLOAD_HOST, SHORT
from tests.ui.conftest import AppServer, wait_for_the_app

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

# Our own pages link to the references the bank cites (arxiv.org, ...); nothing else leaves the app.
# The bank's own links: its references, and the public posts where learners state a claim (seen_at).
_CLAIMS = load_bank(dialogue=False).claims.values()
CITED_HOSTS = {urlparse(str(reference.url)).hostname for claim in _CLAIMS for reference in claim.references
               if reference.url} | {urlparse(address).hostname for claim in _CLAIMS for address in addresses(claim)}

DOM_LINKS_AND_IMAGES = """() => [
  ...[...document.querySelectorAll('a')].map(a => ['a', a.getAttribute('href') || '', a.innerText]),
  ...[...document.querySelectorAll('img')].map(i => ['img', i.getAttribute('src') || '', i.getAttribute('alt') || '']),
  ...[...document.querySelectorAll('[role=img][aria-label]')].map(s => ['icon', '', s.getAttribute('aria-label')]),
]"""


def offending(page, server_url: str) -> list[str]:
    """Anchors and images that point to a payload host or an uncited host, `javascript:` links, and
    icons or the Streamlit logo drawn from a payload."""
    found = []
    for kind, target, text in page.evaluate(DOM_LINKS_AND_IMAGES):
        host = urlparse(target).hostname or ""
        payload = PAYLOAD_HOST in target or PAYLOAD_HOST in text.replace("\u2060", "") and kind == "a"
        foreign = target.startswith(("http:", "https:", "//")) and not target.startswith(server_url) \
            and host not in CITED_HOSTS
        if payload or foreign or target.strip().lower().startswith("javascript:") \
                or (kind == "img" and target == "x") or text in ("home icon", "Streamlit logo"):
            found.append(f"{kind} {target!r} {text[:60]!r}")
    return found


def shown_text(page) -> str:
    return page.inner_text("body").replace("\u2060", "")


@pytest.fixture(scope="module")
def page(browser):
    page = browser.new_page(viewport={"width": 1300, "height": 1600})
    yield page
    page.close()


def visit(page, server_url: str, path: str, query: dict[str, str], shot: str) -> None:
    page.goto(f"{server_url}/{path}?{urlencode(query, quote_via=quote)}")
    wait_for_the_app(page, timeout=180_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"hostile-{shot}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0


@pytest.fixture(scope="module")
def hostile_data(app_server: AppServer) -> dict[str, str]:
    """In the server's database: a learner named with payloads, a class round titled with them."""
    store, bank = Store(app_server.database_url), load_bank()
    learner = store.create_learner(SHORT)
    spec = RoundSpec(id="class", title=HOSTILE, description=HOSTILE, count=2, kinds=("verdict",))
    code, key = classroom.create_class(store, bank, spec)
    return {"learner": learner, "code": code, "key": key, "plain_learner": store.create_learner("Ada")}


URL_CASES = {
    "demo": ("demo-lab", {"demo": HOSTILE}),
    "claim": ("claims", {"claim": HOSTILE}),
    "class": ("quiz", {"class": HOSTILE}),
    "prompt": ("demo-lab", {"demo": "confidence-readable", "prompt": "See https://evil.example/b and",
                            "candidates": "[click](https://evil.example/a), www.evil.example"}),
    "text-parameters": ("demo-lab", {"demo": "causal-vs-bidirectional", "prompt": "I went to the bank " + HOSTILE,
                                     "other": "I went to the bank to " + HOSTILE}),
    "refused-word": ("demo-lab", {"demo": "keys-are-computed", "prompt": "I sat on the river bank " + HOSTILE,
                                  "word": SHORT}),
    # The model's own text: SmolLM2 repeats the address, and continues this one with "www.facebook.com/...".
    "generated-no-learning": ("demo-lab", {"demo": "no-learning-at-inference", "max_new_tokens": "14",
                                           "prompt": "Repeat exactly: www.evil.example"}),
    "generated-kv-cache": ("demo-lab", {"demo": "kv-cache-steps", "steps": "10", "prompt": "Our website is https://"}),
}


@pytest.mark.parametrize("case", list(URL_CASES))
def test_hostile_links_render_no_link_or_image(page, server_url: str, case: str):
    path, query = URL_CASES[case]
    visit(page, server_url, path, query, case)
    assert offending(page, server_url) == []
    text = shown_text(page)
    assert re.search(r"www\.|https?://", text) if case == "generated-kv-cache" else "evil.example" in text


@pytest.mark.parametrize("case", ["round", "seed", "name"])
def test_hostile_round_links_and_a_hostile_name_render_no_link(page, server_url: str, hostile_data, case: str):
    query = {"round": {"learner": hostile_data["plain_learner"], "round": HOSTILE},
             "seed": {"learner": hostile_data["plain_learner"], "round": "core-10", "seed": HOSTILE},
             "name": {"learner": hostile_data["learner"]}}[case]
    visit(page, server_url, "quiz", query, case)
    assert offending(page, server_url) == []
    assert "evil.example" in shown_text(page)


def test_a_hostile_class_title_renders_no_link_for_students_or_the_instructor(page, server_url: str, hostile_data):
    visit(page, server_url, "quiz", {"class": hostile_data["code"]}, "class-title")
    assert offending(page, server_url) == [] and "evil.example" in shown_text(page)
    page.get_by_role("textbox", name="Your name or a nickname").fill(SHORT)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"[?&]r="), timeout=60_000)
    wait_for_the_app(page)
    assert offending(page, server_url) == [] and "evil.example" in shown_text(page)
    visit(page, server_url, "instructor", {}, "instructor")
    page.get_by_role("tab", name="Class results").click()
    page.get_by_role("textbox", name="Round code").fill(hostile_data["code"])
    page.get_by_label("Instructor key").fill(hostile_data["key"])
    page.get_by_role("button", name="Show the results").click()
    page.get_by_text("Per question: how many answered right").wait_for(timeout=60_000)
    wait_for_the_app(page)
    assert offending(page, server_url) == [] and "evil.example" in shown_text(page)


def test_the_chat_renders_a_hostile_message_and_its_reply_without_links(page, server_url: str):
    visit(page, server_url, "ask", {}, "ask")
    box = page.get_by_role("textbox").last
    box.fill("so attention uses KL divergence, right? " + HOSTILE)
    box.press("Enter")
    page.wait_for_selector('[data-testid="stChatMessage"] >> nth=1', timeout=120_000)
    wait_for_the_app(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "hostile-chat.png"), full_page=True)
    assert offending(page, server_url) == []
    assert "[click](https://evil.example/a)" in shown_text(page)
