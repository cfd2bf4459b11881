"""How long a quiz interaction that needs no model work takes on the server: the real page, driven
by Streamlit's AppTest (used by `python -m kqv_demo bench`)."""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from streamlit.testing.v1 import AppTest

from kqv_demo.settings import PROJECT_ROOT


def quiz_rerun_ms(interactions: int = 9) -> float:
    """Server time of quiz interactions that need no model work (answer, next), measured with AppTest."""
    with tempfile.TemporaryDirectory(prefix="kqv-bench-quiz-") as scratch:
        previous = os.environ.get("DATABASE_URL")
        os.environ["DATABASE_URL"] = f"sqlite:///{scratch}/bench.sqlite3"
        try:
            app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60)
            app.run()
            app.switch_page("kqv_demo/ui/pages/quiz.py").run()
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
