"""The app's pages, defined once: app.py builds the navigation from them, and every link, AppTest and the
load tools name a page by its entry here (`PAGES["claims"].path`) rather than by a path typed again."""

from __future__ import annotations

from dataclasses import dataclass

FOLDER = "kqv_demo/ui/pages"  # relative to the project root, where Streamlit runs app.py


@dataclass(frozen=True)
class PageEntry:
    name: str  # the script's name in FOLDER, without .py
    title: str
    icon: str
    url_path: str | None  # None: the default page, served at /

    @property
    def path(self) -> str:
        """What st.Page, st.page_link and AppTest.switch_page take."""
        return f"{FOLDER}/{self.name}.py"


PAGES: dict[str, PageEntry] = {page.name: page for page in (
    PageEntry("home", "Home", ":material/home:", None),
    PageEntry("quiz", "Quiz", ":material/quiz:", "quiz"),
    PageEntry("ask", "Ask", ":material/chat:", "ask"),
    PageEntry("demo_lab", "Demo lab", ":material/science:", "demo-lab"),
    PageEntry("claims", "Claims", ":material/fact_check:", "claims"),
    PageEntry("instructor", "Instructor", ":material/school:", "instructor"),
    PageEntry("about", "About", ":material/info:", "about"),
)}
