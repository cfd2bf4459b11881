"""The bench's figures that need Streamlit itself: how long a quiz interaction that needs no model
work takes on the server (the real page, driven by Streamlit's AppTest), and a class of 30 against an
own server. `python -m kqv_demo bench` runs this module in a process of its own and reads its JSON."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import sys
import time

from streamlit.testing.v1 import AppTest

from kqv_demo.settings import PROJECT_ROOT
from kqv_demo.ui.loadtest import run_class
from kqv_demo.ui.navigation import PAGES


def quiz_rerun_ms(interactions: int = 9) -> float:
    """Server time of quiz interactions that need no model work (answer, next), measured with AppTest."""
    with tempfile.TemporaryDirectory(prefix="kqv-bench-quiz-") as scratch:
        previous = os.environ.get("DATABASE_URL")
        os.environ["DATABASE_URL"] = f"sqlite:///{scratch}/bench.sqlite3"
        try:
            app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60)
            app.run()
            app.switch_page(PAGES["quiz"].path).run()
            app.text_input[0].set_value("bench")
            app.button[0].click().run()
            app.button(key="start-core-10").click().run()
            times = []
            for _ in range(interactions):
                if app.radio and app.radio[0].label == "Your answer":
                    app.radio[0].set_value(app.radio[0].options[0])
                    app.radio[1].set_value(2)
                else:
                    app.text_input[0].set_value("1")
                    app.radio[0].set_value(2)
                for label in ("Check my answer", "Next question"):
                    button = next(b for b in app.button if b.label == label)
                    started = time.perf_counter()
                    button.click().run()
                    times.append((time.perf_counter() - started) * 1000)
        finally:
            if previous is None:
                os.environ.pop("DATABASE_URL", None)
            else:
                os.environ["DATABASE_URL"] = previous
    return round(statistics.median(times), 1)


def class30() -> dict[str, object]:
    """30 simulated students play core-10 at once over the websocket (kqv_demo/ui/loadtest.py)."""
    report = run_class(students=30)
    return {
        "class30_p50_ms": report.p50_ms, "class30_p95_ms": report.p95_ms, "class30_errors": report.errors,
        "class30_answers_stored": report.answers_stored, "class30_answers_expected": report.answers_expected,
    }


def main() -> None:
    def progress(step: str) -> None:
        print(f"bench: {step}...", file=sys.stderr, flush=True)

    progress("quiz interactions")
    figures = {"quiz_rerun_ms_p50": quiz_rerun_ms()}
    progress("a class of 30 against an own server")
    figures.update(class30())
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
