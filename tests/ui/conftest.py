"""The real server in Debian's Chromium, for the browser tests (tests/ui/test_browser*.py).

Without Chromium the browser tests are skipped on a developer's machine, but in CI (`CI` set) they
fail: a CI run that cannot start the browser must not pass as if they had run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kqv_demo.ui.app_server import own_servers

CHROMIUM = os.environ.get("KQV_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MISSING = "Debian's chromium is not installed (apt-get install chromium); .ci/run installs it"


def require_chromium() -> None:
    """Skip without Chromium, except in CI, where that is a failure."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{MISSING}. CI is set, so the browser tests fail instead of being skipped.", pytrace=False)
    pytest.skip(MISSING)


@dataclass(frozen=True)
class AppServer:
    url: str
    database_url: str


@pytest.fixture(scope="module")
def app_server(tmp_path_factory) -> Iterator[AppServer]:
    """The app on a free loopback port, with a database of its own (see kqv_demo.ui.app_server)."""
    require_chromium()  # before starting a server that no browser would open
    scratch = tmp_path_factory.mktemp("server")
    database_url = f"sqlite:///{scratch / 'browser.sqlite3'}"
    with own_servers(database_url, 1, scratch) as (server,):
        yield AppServer(server.url, database_url)


@pytest.fixture(scope="module")
def server_url(app_server: AppServer) -> str:
    return app_server.url


@pytest.fixture(scope="module")
def browser(app_server: AppServer):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def wait_for_the_app(page, timeout: float = 120_000) -> None:
    """Until the script has run and Streamlit is idle."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)
    page.wait_for_timeout(500)
